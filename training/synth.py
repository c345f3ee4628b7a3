"""Synthetic video QA: clips of coloured shapes with questions whose answers are known exactly.

Each clip is 16 s at 2 fps (32 frames, 128x128, a mean-grey background), so the processor's one-frame-per-second sampling sees the same 16
frames at training and at inference (a clip of 8-15 s would be sampled differently by the two, spec Q-28). One to
three shapes, all of different colours and kinds, appear at 0, 5 or 10 s and stay; one of them, the mover, travels
in a straight line (left, right, up or down) from when it appears until it stops; when there are other shapes, it
either stops touching one of them, stops short of it, or moves away from it.

Question types (the answer is always one word):
- colour:    "What colour is the circle?"                      -> red / green / blue / yellow
- shape:     "What shape is the blue object?"                  -> circle / square / triangle
- direction: "Which way does the red square move?"             -> left / right / up / down
- count:     "How many shapes are in the video?"               -> one / two / three
- order:     "Which colour appears first?" / "... last?"       -> a colour (two or more shapes)
- touch:     "Does the red square touch the green circle?"     -> yes / no (two or more shapes)

`write_dataset` writes the clips and a LLaVA-style JSON list (`video`, `conversations`, `types`) that `mvgpt train`
and `mvgpt eval` read. Everything is a function of the seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tiny import write_video

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 240), "yellow": (235, 215, 40)}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
COUNT_WORDS = ("zero", "one", "two", "three")
QUESTION_TYPES = ("colour", "shape", "direction", "count", "order", "touch")

SIZE = 128  # frame width and height
FPS = 2
SECONDS = 16
RADIUS = 16  # half the side of a shape's bounding box
APPEAR_AT = (0, 5, 10)  # seconds
# CLIP's (and, within 1/255, ImageNet's) mean colour: background pixels normalise to about zero in the pixel
# pipelines of both encoders, so the shapes carry most of what differs between clips.
BACKGROUND = (123, 117, 104)


@dataclass
class Shape:
    colour: str
    kind: str
    x: float  # centre at the moment it appears
    y: float
    appears: int  # second

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"


@dataclass
class Scene:
    shapes: list[Shape]
    mover: int  # index into shapes
    direction: str
    distance: float  # pixels travelled before stopping
    arrival: float  # second at which the mover stops
    target: int | None  # the other shape the touch question asks about (None with one shape)
    touches: bool  # whether the mover stops against the target

    def mover_centre(self, second: float) -> tuple[float, float]:
        mover = self.shapes[self.mover]
        start, end = mover.appears, self.arrival
        progress = 0.0 if second <= start else min(1.0, (second - start) / (end - start))
        dx, dy = DIRECTIONS[self.direction]
        return mover.x + dx * self.distance * progress, mover.y + dy * self.distance * progress

    def centres(self, second: float) -> list[tuple[float, float] | None]:
        """Each shape's centre at `second`, None before it appears."""
        return [
            None if shape.appears > second else (self.mover_centre(second) if i == self.mover else (shape.x, shape.y))
            for i, shape in enumerate(self.shapes)
        ]


_ROWS, _COLS = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5


def shape_mask(kind: str, x: float, y: float, radius: int = RADIUS, size: int = SIZE) -> np.ndarray:
    """(size, size) boolean mask of a shape centred at (x, y) inside a (2 radius)-wide box."""
    dx, dy = _COLS[:size, :size] - x, _ROWS[:size, :size] - y
    if kind == "circle":
        return dx**2 + dy**2 <= radius**2
    if kind == "square":
        return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    # triangle pointing up: apex at the top centre, base along the bottom of the box
    inside_height = (dy >= -radius) & (dy <= radius)
    half_width = (dy + radius) / 2
    return inside_height & (np.abs(dx) <= half_width)


def render(scene: Scene) -> np.ndarray:
    """(SECONDS * FPS, SIZE, SIZE, 3) uint8 RGB frames."""
    frames = np.full((SECONDS * FPS, SIZE, SIZE, 3), BACKGROUND, dtype=np.uint8)
    for index in range(SECONDS * FPS):
        for shape, centre in zip(scene.shapes, scene.centres(index / FPS)):
            if centre is not None:
                frames[index][shape_mask(shape.kind, *centre)] = COLOURS[shape.colour]
    return frames


def _gap(a: Shape, a_centre, b: Shape, b_centre, limit: int = 6) -> int:
    """Steps of growing one mask until it meets the other (0: they overlap), up to `limit`."""
    first, second = shape_mask(a.kind, *a_centre), shape_mask(b.kind, *b_centre)
    for grown in range(limit):
        if (first & second).any():
            return grown
        first = first | np.roll(first, 1, 0) | np.roll(first, -1, 0) | np.roll(first, 1, 1) | np.roll(first, -1, 1)
    return limit


def _distance_to_contact(scene: Scene, target: int) -> float | None:
    """Pixels the mover travels before its mask first meets the target's (None if it never does inside the frame)."""
    mover, other = scene.shapes[scene.mover], scene.shapes[target]
    dx, dy = DIRECTIONS[scene.direction]
    for step in range(0, SIZE):
        x, y = mover.x + dx * step, mover.y + dy * step
        if not (RADIUS <= x <= SIZE - RADIUS and RADIUS <= y <= SIZE - RADIUS):
            return None
        if (shape_mask(mover.kind, x, y) & shape_mask(other.kind, other.x, other.y)).any():
            return step - 1 if step > 0 else None
    return None


def _valid(scene: Scene) -> bool:
    """Shapes inside the frame, never overlapping, and never closer than 6 px except the touch contact at the end."""
    for second in np.arange(0, SECONDS, 1 / FPS):
        centres = scene.centres(second)
        for i, centre in enumerate(centres):
            if centre is None:
                continue
            if not all(RADIUS <= c <= SIZE - RADIUS for c in centre):
                return False
            for j in range(i):
                if centres[j] is None:
                    continue
                gap = _gap(scene.shapes[i], centre, scene.shapes[j], centres[j])
                touching_pair = scene.touches and {i, j} == {scene.mover, scene.target}
                if touching_pair and second >= scene.arrival:
                    if gap not in (1, 2):  # adjacent (a corner may be one diagonal step away), not overlapping
                        return False
                elif gap < 6:
                    return False
    return True


def make_scene(rng: random.Random) -> Scene:
    """A random valid scene (rejection sampling)."""
    count = rng.choice((1, 2, 3))
    touches = count > 1 and rng.random() < 0.5
    while True:
        colours = rng.sample(list(COLOURS), count)
        kinds = rng.sample(SHAPES, count)
        appears = sorted(rng.sample(APPEAR_AT, count)) if count > 1 else [0]
        rng.shuffle(appears)
        shapes = [
            Shape(colour, kind, rng.uniform(RADIUS + 2, SIZE - RADIUS - 2), rng.uniform(RADIUS + 2, SIZE - RADIUS - 2), t)
            for colour, kind, t in zip(colours, kinds, appears)
        ]
        mover = rng.randrange(count)
        direction = rng.choice(list(DIRECTIONS))
        start = shapes[mover].appears
        target = None
        if count > 1:
            target = rng.choice([i for i in range(count) if i != mover])
            # the target sits on the mover's path, 40 px or more ahead of it; a "no" stops short of it
            dx, dy = DIRECTIONS[direction]
            ahead = rng.uniform(2 * RADIUS + 40, SIZE)
            shapes[target].x = shapes[mover].x + dx * ahead + (0 if dx else rng.uniform(-4, 4))
            shapes[target].y = shapes[mover].y + dy * ahead + (0 if dy else rng.uniform(-4, 4))
        scene = Scene(shapes, mover, direction, 0.0, 0.0, target, touches)
        if target is not None:
            contact = _distance_to_contact(scene, target)
            if contact is None or contact < 40:
                continue
            distance = contact if touches else contact - rng.uniform(12, 24)
            earliest = max(start, shapes[target].appears) + 2
        else:
            room = {"left": shapes[mover].x, "right": SIZE - shapes[mover].x, "up": shapes[mover].y,
                    "down": SIZE - shapes[mover].y}[direction] - RADIUS - 1
            if room < 24:
                continue
            distance = rng.uniform(24, room)
            earliest = start + 2
        if earliest > SECONDS - 2:
            continue
        scene.distance = float(distance)
        scene.arrival = rng.uniform(earliest, SECONDS - 2)
        if _valid(scene):
            return scene


def questions(scene: Scene, rng: random.Random) -> list[tuple[str, str, str]]:
    """Every question the scene can answer: (type, question, answer)."""
    shapes, mover = scene.shapes, scene.shapes[scene.mover]
    by_kind, by_colour = rng.choice(shapes), rng.choice(shapes)
    items = [
        ("colour", f"What colour is the {by_kind.kind}?", by_kind.colour),
        ("shape", f"What shape is the {by_colour.colour} object?", by_colour.kind),
        ("direction", f"Which way does the {mover.name} move?", scene.direction),
        ("count", "How many shapes are in the video?", COUNT_WORDS[len(shapes)]),
    ]
    if scene.target is not None:
        if rng.random() < 0.5:
            items.append(("order", "Which colour appears first?", min(shapes, key=lambda s: s.appears).colour))
        else:
            items.append(("order", "Which colour appears last?", max(shapes, key=lambda s: s.appears).colour))
        target = shapes[scene.target]
        items.append(("touch", f"Does the {mover.name} touch the {target.name}?", "yes" if scene.touches else "no"))
    return items


def write_dataset(out: str | Path, n: int, seed: int = 0, turns: int = 1) -> Path:
    """
    Writes `n` clips to `out/clips/` and their questions to `out/data.json`; returns the JSON's path.

    With `turns=1` each record is one question about one clip (one record per question, every answerable type per
    clip); with `turns > 1` each clip gives one record whose conversation asks up to `turns` of its questions in a
    random order, which trains on several answers per encoded video.
    """
    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    records = []
    for index in range(n):
        scene = make_scene(rng)
        clip = Path("clips") / f"{index:06d}.mp4"
        write_video(out / clip, fps=FPS, frames=render(scene))
        items = questions(scene, rng)
        groups = [[item] for item in items] if turns == 1 else [rng.sample(items, min(turns, len(items)))]
        for group in groups:
            conversations = []
            for position, (_, question, answer) in enumerate(group):
                prefix = "<video>\n" if position == 0 else ""
                conversations += [{"from": "human", "value": prefix + question}, {"from": "gpt", "value": answer}]
            records.append({
                "id": f"{index:06d}-{len(records)}", "video": str(clip), "conversations": conversations,
                "types": [kind for kind, _, _ in group],
            })
    data = out / "data.json"
    data.write_text(json.dumps(records, indent=1))
    return data
