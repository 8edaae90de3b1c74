"""Synthetic shop-floor CCTV queries made from clean cover images."""
