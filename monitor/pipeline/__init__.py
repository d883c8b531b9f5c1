"""Use-case functions called alike by the scheduler, the CLI and the dashboard."""
