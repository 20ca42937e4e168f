"""Interactivity: slash commands, buttons, shortcuts and modals, acked in time.

The path of one payload (each step in its own module):

    transport (Socket Mode envelope, HTTP form post)
      -> payload.read_interaction   what was done, by whom, and which installation serves it
      -> intake.Interactions.offer  one pending ack per payload; the intake's Redis claim
      -> routing.InteractiveRoutes  the one handler that answers it
      -> context.InteractiveContext ack(), respond(), open_modal(), update() ...

This package root imports nothing: ``gridbot.context`` and ``gridbot.dispatch`` import its
modules, and those import them back.
"""
