"""cutpilot: turn a pile of footage into a clip library, then into short-video ads."""

__version__ = "0.1.0"
