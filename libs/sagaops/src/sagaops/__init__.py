"""Operating the saga system from outside, over its public interfaces only."""
