"""gridbot's bundled plugins (installed as the ``gridbot_plugins`` package)."""
