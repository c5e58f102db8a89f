"""The sizes of a tree's sweepers, one per level or one for all."""

import numpy as np


def level_widths(num_levels, bottom, top=None):
    """Sweeper widths that double up the tree, from `bottom`, capped at `top`.

    Level `k` of a tree of `num_levels` levels runs `2**(num_levels - 1 - k)`
    merges per sequence, so doubling the width each level up keeps each
    level's MLP work about equal (an MLP's cost grows with its width) and
    puts the parameters where the merges are few. Pass the result as
    `TreeMemory(hidden_dim=...)`.

    >>> level_widths(7, 64, top=2048)
    [64, 128, 256, 512, 1024, 2048, 2048]
    """
    if int(num_levels) < 1 or int(bottom) < 1 or (top is not None and int(top) < 1):
        raise ValueError(
            "`level_widths` needs num_levels >= 1 (a tree of T steps has ceil(log2 T) "
            "levels, T >= 2) and widths >= 1. Received: "
            f"num_levels={num_levels}, bottom={bottom}, top={top}"
        )
    widths = [int(bottom) * 2**k for k in range(int(num_levels))]
    return widths if top is None else [min(w, int(top)) for w in widths]


def per_level(name, value, num_levels, shared, minimum=1):
    """`value` checked: an int, or a list of one int per level (not shared)."""
    if isinstance(value, (list, tuple)):
        values = list(value)
        if shared:
            raise ValueError(
                f"`{name}` takes one value per level only for a tree of one sweeper per "
                f"level; this tree has share_weights=True. Received: {name}={value}"
            )
        if len(values) != num_levels:
            raise ValueError(
                f"`{name}` takes one value per level: {num_levels} for this tree of "
                f"{num_levels} levels (bottom first). Received {len(values)}: {value}"
            )
    else:
        values = [value]
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
               for v in values):
        raise ValueError(
            f"`{name}` must be an int >= {minimum}, or a list of one per level. "
            f"Received: {name}={value!r}"
        )
    return [int(v) for v in values] if isinstance(value, (list, tuple)) else int(value)


def plain(value):
    """A per-level size as `get_config` gives it: an int or a plain list."""
    return list(value) if isinstance(value, list) else value


def levels_of(value, num_levels):
    """One entry per level (at least one) of an int or a per-level list."""
    return list(value) if isinstance(value, list) else [value] * max(num_levels, 1)
