"""ffmpeg filter-graph construction: pure functions from timeline items to ffmpeg arguments (no I/O here).

Each video item becomes one labelled chain that yields exactly N output frames at the output fps and size;
chains are joined by `xfade` inside a segment, then caption PNGs and the logo are overlaid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cutpilot.timeline import KenBurns

QUALITY: dict[str, tuple[str, int]] = {"draft": ("ultrafast", 23), "standard": ("veryfast", 23), "high": ("medium", 21)}
SR = 48000


def frames(ms: int, fps: int) -> int:
    """Milliseconds → output frame index; the single place where timeline time is rounded to frames."""
    return int((ms * fps + 500) // 1000)


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


@dataclass
class Graph:
    """Accumulates inputs and filter statements for one ffmpeg invocation."""

    inputs: list[list[str]] = field(default_factory=list)
    chains: list[str] = field(default_factory=list)
    _n: int = 0

    def add_input(self, args: list[str]) -> int:
        self.inputs.append(args)
        return len(self.inputs) - 1

    def label(self, prefix: str = "s") -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def args(self) -> list[str]:
        out: list[str] = []
        for a in self.inputs:
            out += a
        return [*out, "-filter_complex", ";".join(self.chains)]


def fit_filters(W: int, H: int, fit: str, focus: tuple[float, float] | None, inp: str, out: str, g: Graph) -> None:
    """Fit any source shape into W×H: crop-to-fill centred on `focus` (else centre) or fit over a blurred copy."""
    if fit == "blur":
        a, b, bg, fg = g.label("ba"), g.label("bb"), g.label("bg"), g.label("fg")
        sw, sh = _even(W / 8), _even(H / 8)
        g.chains.append(f"[{inp}]split=2[{a}][{b}]")
        g.chains.append(
            f"[{a}]scale={sw}:{sh}:force_original_aspect_ratio=increase,crop={sw}:{sh},boxblur=8:2,"
            f"scale={W}:{H},setsar=1[{bg}]"
        )
        g.chains.append(f"[{b}]scale={W}:{H}:force_original_aspect_ratio=decrease,setsar=1[{fg}]")
        g.chains.append(f"[{bg}][{fg}]overlay=(W-w)/2:(H-h)/2[{out}]")
        return
    fx, fy = focus or (0.5, 0.5)
    g.chains.append(
        f"[{inp}]scale={W}:{H}:force_original_aspect_ratio=increase,"
        f"crop={W}:{H}:'max(0,min(iw-ow,iw*{fx:.4f}-ow/2))':'max(0,min(ih-oh,ih*{fy:.4f}-oh/2))',setsar=1[{out}]"
    )


def clip_chain(g: Graph, *, idx: int, n: int, fps: int, W: int, H: int, fit: str,
               focus: tuple[float, float] | None, slow: float | None, hold_s: float, out: str) -> None:
    """A source range → exactly n frames: optional slow-down (setpts), fps, fit, freeze tail (tpad clone), trim."""
    pre = g.label("c")
    slow_f = f"setpts={slow:.6f}*PTS," if slow else ""
    g.chains.append(f"[{idx}:v]setpts=PTS-STARTPTS,{slow_f}fps={fps}[{pre}]")
    fitted = g.label("f")
    fit_filters(W, H, fit, focus, pre, fitted, g)
    g.chains.append(
        f"[{fitted}]tpad=stop_mode=clone:stop_duration={hold_s:.3f},trim=end_frame={n},setpts=PTS-STARTPTS,"
        f"format=yuv420p,settb=1/{fps}[{out}]"
    )


def kenburns_chain(g: Graph, *, idx: int, n: int, fps: int, W: int, H: int, motion: KenBurns, out: str) -> None:
    """Pan/zoom a still (already fitted to an oversampled W×H canvas) with zoompan: n frames."""
    zf, zt = motion.zoom_from, motion.zoom_to
    (cx0, cy0), (cx1, cy1) = motion.center_from, motion.center_to
    den = max(1, n - 1)
    z = f"{zf:.4f}+({zt - zf:.4f})*on/{den}"
    cx = f"({cx0:.4f}+({cx1 - cx0:.4f})*on/{den})"
    cy = f"({cy0:.4f}+({cy1 - cy0:.4f})*on/{den})"
    x = f"max(0,min(iw-iw/zoom,{cx}*iw-iw/zoom/2))"
    y = f"max(0,min(ih-ih/zoom,{cy}*ih-ih/zoom/2))"
    g.chains.append(
        f"[{idx}:v]zoompan=z='{z}':x='{x}':y='{y}':d={n}:s={W}x{H}:fps={fps},trim=end_frame={n},"
        f"setpts=PTS-STARTPTS,setsar=1,format=yuv420p,settb=1/{fps}[{out}]"
    )


def still_chain(g: Graph, *, idx: int, n: int, fps: int, out: str) -> None:
    """A single still frame already at W×H (card, motionless image) → n frames; decoded once, repeated by `loop`."""
    g.chains.append(f"[{idx}:v]settb=1/{fps},loop=loop={max(0, n - 1)}:size=1:start=0,setpts=N,fps={fps},"
                    f"trim=end_frame={n},setsar=1,format=yuv420p[{out}]")


def xfade(g: Graph, a: str, b: str, *, dur_frames: int, offset_frames: int, fps: int, out: str) -> None:
    g.chains.append(
        f"[{a}][{b}]xfade=transition=fade:duration={dur_frames / fps:.6f}:offset={offset_frames / fps:.6f}[{out}]"
    )


def overlay_png(g: Graph, base: str, png_idx: int, *, x: int, y: int, t0: float | None, t1: float | None,
                out: str) -> None:
    """Overlay a single-frame PNG (repeated after its EOF) at x,y, shown only in [t0, t1) when given."""
    en = f":enable='gte(t,{t0:.4f})*lt(t,{t1:.4f})'" if t0 is not None and t1 is not None else ""
    g.chains.append(f"[{base}][{png_idx}:v]overlay={x}:{y}:eof_action=repeat{en}[{out}]")


def atempo_chain(factor: float) -> str:
    """atempo accepts 0.5..2 per instance: chain instances for larger changes."""
    parts = []
    f = factor
    while f < 0.5:
        parts.append("atempo=0.5")
        f /= 0.5
    while f > 2.0:
        parts.append("atempo=2.0")
        f /= 2.0
    parts.append(f"atempo={f:.6f}")
    return ",".join(parts)


def duck_expr(spans: list[tuple[float, float]], duck_db: float, ramp: float = 0.15) -> str:
    """A volume expression that lowers the music by duck_db inside speech spans with short linear ramps."""
    if not spans:
        return "1"
    k = 10 ** (duck_db / 20)
    # depth(t) in 0..1: 1 inside a span, ramping over `ramp` s on both sides; spans are merged beforehand
    terms = [
        f"min(1,max(0,min((t-{a - ramp:.3f})/{ramp},({b + ramp:.3f}-t)/{ramp})))"
        for a, b in spans
    ]
    depth = "min(1," + "+".join(terms) + ")"
    return f"1-(1-{k:.5f})*{depth}"


def encode_args(quality: str, fps: int, n_frames: int) -> list[str]:
    preset, crf = QUALITY[quality]
    return ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", "-r", str(fps),
            "-frames:v", str(n_frames), "-video_track_timescale", str(fps * 1000), "-an"]
