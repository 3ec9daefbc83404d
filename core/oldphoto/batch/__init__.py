"""Archive-scale restoration: a resumable job over a folder tree, on one machine or on a Ray cluster.

The job is the same for both engines (``oldphoto batch IN OUT [--engine ray]``): :mod:`.plan` walks
IN and decides, from the manifest of earlier runs (:mod:`.manifest`), which photos still need work;
:mod:`.work` restores one photo and writes its PNG atomically; :mod:`.local` and :mod:`.ray_engine`
only differ in where :func:`.work.restore_job` runs. Keeping the decisions and the writes in one
place is what makes the two engines' outputs and manifests identical. Ray is imported by
:mod:`.ray_engine` only, so the local engine runs without it.
"""
