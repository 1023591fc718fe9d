"""What keeps a blocking caller safe, whichever path its call takes.

``signals``: teardown that a signal cannot cut short (handlers held back in the main
thread); ``in_flight``: the calls driven from their caller's thread, as the bridge's
shutdown sees them; ``imports``: a sync call that would deadlock on an import lock fails.
"""
