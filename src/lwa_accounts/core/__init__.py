"""Pure domain logic: dataclasses and decisions. Standard library only (a test enforces it)."""
