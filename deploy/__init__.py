"""Deployment checks (deploy/check.sh) as importable modules, for the tests."""
