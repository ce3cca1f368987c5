"""Scale-out batch matting on Ray Data (the ``ray`` extra); training scales with torchrun DDP instead."""
