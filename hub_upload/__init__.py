"""Hub tooling: conversion of the original release (not remote code; never imported by the model files)."""

from .convert import ConversionError, convert

__all__ = ["ConversionError", "convert"]
