"""A sync call driven from the caller's thread: ``def`` code runs there, async code on the loop.

``walk`` walks the call's compiled plan in the caller's thread and decides, per plan,
whether this path or the loop path makes fewer thread hops (``prefers_caller``);
``loop_side`` sends its async steps to the bridge loop, one round trip each, all of a call's
steps in one task; ``exits`` tears its ``def`` generators down with ``ExitStack``'s rules.
"""
