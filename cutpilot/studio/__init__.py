"""cutpilot studio: the web UI and REST API served by `cutpilot serve`."""
