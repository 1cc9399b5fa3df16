"""Limits on input, in one place: the models validate against them at the edge (a 10-hour card or a 20000 px frame
is refused in milliseconds, before any media is touched), and `--help` and the README quote them.

They bound what an ad can need, with room to spare; nothing inside cutpilot makes anything larger.
"""

from __future__ import annotations

from typing import Literal

# --- what an ad is -------------------------------------------------------------------------------------------
MIN_AD_S = 3.0  # a brief's length
MAX_AD_S = 180.0
MAX_TIMELINE_S = 600  # a timeline's total length, end card included (10 min)
MAX_TIMELINE_MS = MAX_TIMELINE_S * 1000
MAX_END_CARD_MS = 30_000
MAX_CROSSFADE_MS = 5_000
MAX_VIDEO_ITEMS = 300
MAX_VOICEOVER_ITEMS = 300
MAX_CAPTIONS = 1_000
MAX_CAPTION_WORDS = 200  # word-highlight entries per caption
MAX_SLOTS = 40  # storyboard slots
MAX_SIDE_PX = 4096  # output width and height
MIN_SIDE_PX = 16
MIN_FPS = 1
MAX_FPS = 120
MAX_GAIN_DB = 24.0  # |gain| of any item, voiceover or music bed
MIN_GAIN_DB = -60.0

# --- text ------------------------------------------------------------------------------------------------------
MAX_BRIEF_CHARS = 2_000
MAX_NAME_CHARS = 200  # product, angle, audience, tone, platform, channel
MAX_LIST_ITEMS = 20  # must_include / must_avoid / formats of a brief
MAX_CARD_CHARS = 200  # card title and subtitle
MAX_CAPTION_CHARS = 500
MAX_VOICE_CHARS = 2_000  # one voiceover item's text
MAX_TRANSCRIPT_CHARS = 5_000  # a clip's transcript or description (annotations, `clips edit`)
MAX_TAGS = 50
MAX_TAG_CHARS = 50

# --- options ---------------------------------------------------------------------------------------------------
MAX_LIST_LIMIT = 10_000  # `clips list --limit`
MAX_SEARCH_LIMIT = 500  # `search --limit`

Quality = Literal["draft", "standard", "high"]
Aspect = Literal["9:16", "1:1", "4:5", "16:9"]
Lang = Literal["zh", "en"]
ASPECT_NAMES: tuple[str, ...] = ("9:16", "1:1", "4:5", "16:9")
# Languages a clip's `language` field may name (ISO 639-1, plus the ASR's own codes for Chinese variants).
CLIP_LANGUAGES: tuple[str, ...] = ("zh", "en", "yue", "ja", "ko", "es", "fr", "de", "it", "pt", "ru", "ar", "hi",
                                   "th", "vi", "id", "ms", "tr", "nl", "pl")
