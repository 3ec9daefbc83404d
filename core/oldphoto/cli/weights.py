"""``oldphoto weights ...``: download, status, verify (--cross-check), import, convert, publish, fetch-upstream.

Each subcommand prints one line per component and, on failure, the :class:`WeightsError` message
(which says what to do) instead of a traceback; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..errors import WeightsError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "weights",
        help="download, verify, convert or publish model weights",
        description="Manage the model weights (safetensors from the Hugging Face Hub).",
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION")

    def hub_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("--cache-dir", help="Hub cache (default: HF_HUB_CACHE or HF_HOME/hub)")
        q.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
        q.add_argument("--token", help="Hub token (default: HF_TOKEN or the stored login)")

    d = sub.add_parser("download", help="fetch and verify the files a mode needs, for offline use")
    d.add_argument(
        "--mode",
        action="append",
        choices=("quality", "scratch", "hr", "faces", "colorize", "reference", "points", "all"),
        help="repeatable; default all (every restoration file). 'faces' with 'hr' fetches the 512 px face "
        "generator; 'colorize' the default DDColor model (other colour models: --component ddcolor_paper_tiny, ...); "
        "'reference' Deep Exemplar (colour from a reference photo); 'points' SIGGRAPH17 (colour points)",
    )
    d.add_argument("--component", action="append", help="a weights.json component (repeatable)")
    d.add_argument("--force", action="store_true", help="download again even if cached")
    hub_options(d)
    d.set_defaults(func=_download)

    st = sub.add_parser("status", help="one line per component: where its file is, where it came from, its size")
    st.add_argument("--component", action="append")
    st.add_argument("--weights-dir", help="report on a folder of converted files instead of the cache")
    st.add_argument("--cache-dir")
    st.set_defaults(func=_status)

    v = sub.add_parser("verify", help="re-hash and re-check the cached files (no network unless --cross-check)")
    v.add_argument("--component", action="append")
    v.add_argument("--weights-dir", help="check a folder of converted files instead of the cache")
    v.add_argument(
        "--cross-check",
        action="store_true",
        help="also convert each cached file again from a second source listed in weights.json and compare the "
        "bytes; names the sources that disagree (downloads)",
    )
    hub_options(v)
    v.set_defaults(func=_verify)

    im = sub.add_parser(
        "import",
        help="convert official files you got another way (release zips, a folder, .pth files) into the cache",
        description="When downloads fail: import the release zips (global_checkpoints.zip, face_checkpoints.zip, "
        "the RetinaFace zip), a folder laid out like the official repository, or single .pth files. Each is "
        "checked and converted into the cache, so later runs need neither the network nor --weights-dir.",
    )
    im.add_argument("path", nargs="+", help="a zip, a folder, or checkpoint files")
    im.add_argument("--component", action="append", help="only these (a single file: which one it is)")
    im.set_defaults(func=_import)

    c = sub.add_parser("convert", help="official checkpoints (folder or file) -> <component>.safetensors")
    c.add_argument("src", help="folder laid out like the unpacked release zips, or one checkpoint file")
    c.add_argument("out", help="output folder (also gets weights.fragment.json with sha256s)")
    c.add_argument("--component", action="append", help="only these (a single file: which one it is)")
    c.set_defaults(func=_convert)

    pub = sub.add_parser("publish", help="upload converted files to a Hub repo (maintainers)")
    pub.add_argument("out", help="folder of <component>.safetensors from `oldphoto weights convert`")
    pub.add_argument("--repo-id", required=True)
    pub.add_argument("--branch", default="main")
    pub.add_argument("--private", action="store_true", default=None)
    pub.add_argument("--message")
    pub.add_argument("--weights-json", help="weights.json to update in place with the new pins")
    pub.add_argument("--endpoint")
    pub.add_argument("--token")
    pub.set_defaults(func=_publish)

    f = sub.add_parser("fetch-upstream", help="download the official release zips (GitHub) and convert them")
    f.add_argument("--out", help="output folder (default: the converted-weights cache used by the resolver)")
    f.add_argument("--component", action="append")
    f.add_argument("--archives-dir", help="use (and keep) the zips in this folder")
    f.add_argument("--base-url", help="download the zips from this URL prefix instead of the release pages")
    f.set_defaults(func=_fetch_upstream)
    return p


def _setup_logging() -> None:
    """Our own lines only (the libraries' per-request INFO lines are not for users)."""
    log = logging.getLogger("oldphoto")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _run(action) -> int:
    _setup_logging()
    try:
        return action() or 0
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing partial was kept, the next run starts again cleanly", file=sys.stderr)
        return 130


def _hub_kw(args) -> dict:
    return {"cache_dir": args.cache_dir, "endpoint": args.endpoint, "token": args.token}


def _download(args) -> int:
    from .. import weights

    def action() -> int:
        names = args.component or weights.components_for_modes(args.mode or ["all"])
        done = weights.download(components=names, force_download=args.force, **_hub_kw(args))
        for name, path in done.items():
            print(f"ok  {name:26s} {path}")
        return 0

    return _run(action)


def _status(args) -> int:
    from .. import weights

    def action() -> int:
        for s in weights.status(args.component, weights_dir=args.weights_dir, cache_dir=args.cache_dir):
            size = f"{s.size / 1e6:7.1f} MB" if s.size else "      ? MB"
            if s.path is None:
                print(f"{s.component:26s} {size}  not downloaded")
            else:
                how = "sha256" if s.checked_by == "sha256" else "manifest"
                where = f" ({s.detail})" if s.detail else ""
                print(f"{s.component:26s} {size}  {s.path}  from {s.source}{where}, checked by {how}")
        return 0

    return _run(action)


def _verify(args) -> int:
    from .. import weights

    def action() -> int:
        results = weights.verify(args.component, weights_dir=args.weights_dir, cache_dir=args.cache_dir)
        for r in results:
            print(
                f"{'ok ' if r.ok else 'BAD'} {r.component:26s} {r.message}"
                + (f"  ({r.path})" if r.path else "")
            )
        bad = [r.component for r in results if not r.ok]
        if bad:
            print(
                f"{len(bad)} component(s) missing or bad: {', '.join(bad)}. Run `oldphoto weights download` "
                "(with --force to replace a bad file).",
                file=sys.stderr,
            )
        if args.cross_check:
            from ..weights.consensus import cross_check

            checks = cross_check(args.component, cache_dir=args.cache_dir, endpoint=args.endpoint, token=args.token)
            for c in checks:
                mark = {"agree": "ok ", "DIFFER": "BAD"}.get(c.status, "-- ")
                print(f"{mark} {c.component:26s} cross-check: {c.message}")
            differ = [c.component for c in checks if not c.ok]
            if differ:
                print(f"{len(differ)} component(s) whose sources disagree: {', '.join(differ)}.", file=sys.stderr)
                return 1
        return 1 if bad else 0

    return _run(action)


def _import(args) -> int:
    from ..weights.importer import import_weights

    def action() -> int:
        single = args.component[0] if args.component and len(args.component) == 1 else None
        report = import_weights(args.path, components=args.component, component=single)
        for r in report.imported:
            print(f"ok  {r.component:26s} {r.path}  (from {r.source})")
        for e in report.errors:
            print(f"BAD {e}", file=sys.stderr)
        if report.missing:
            print(f"not in {', '.join(args.path)}: {', '.join(report.missing)} (downloaded when a run needs them, "
                  "or import them too)")
        return 1 if report.errors else 0

    return _run(action)


def _convert(args) -> int:
    from ..weights.convert import FRAGMENT_NAME, convert

    def action() -> int:
        single = args.component[0] if args.component and len(args.component) == 1 else None
        results = convert(args.src, args.out, components=args.component, component=single)
        for r in results:
            print(f"ok  {r.component:26s} {r.path}  sha256 {r.sha256}")
        print(f"weights.json fragment: {args.out}/{FRAGMENT_NAME}")
        return 0

    return _run(action)


def _publish(args) -> int:
    from ..weights.convert import publish

    def action() -> int:
        data = publish(
            args.out,
            args.repo_id,
            token=args.token,
            endpoint=args.endpoint,
            branch=args.branch,
            private=args.private,
            message=args.message,
            weights_json=args.weights_json,
        )
        if not args.weights_json:
            print(json.dumps(data, indent=2))
        else:
            print(f"updated {args.weights_json}")
        return 0

    return _run(action)


def _fetch_upstream(args) -> int:
    from ..weights import converted_dir
    from ..weights.convert import fetch_upstream

    def action() -> int:
        out = args.out or converted_dir()
        results = fetch_upstream(
            out, components=args.component, archives_dir=args.archives_dir, base_url=args.base_url
        )
        for r in results:
            print(f"ok  {r.component:26s} {r.path}  sha256 {r.sha256}")
        return 0

    return _run(action)


def main(argv: list[str] | None = None) -> int:
    """``python -m oldphoto.cli.weights ...``: the same as ``oldphoto weights ...``."""
    parser = argparse.ArgumentParser(prog="oldphoto")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
