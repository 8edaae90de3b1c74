"""Test helpers reusable by every test module and benchmark: tiny model, covers, live server."""
