"""Pipeline stages: pure image math around the networks (PIL / numpy / torch in and out)."""
