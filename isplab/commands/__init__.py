"""CLI verbs that live in their own module: ``isplab/commands/<verb>.py`` defines a typer
function ``command``; ``isplab.cli`` registers it as ``isplab <verb>`` (underscores become
dashes). Shared CLI pieces (``err`` console, ``_setup_logging``) are imported from
``isplab.cli`` inside the function body."""
