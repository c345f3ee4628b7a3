"""Synthetic video QA: clips of coloured shapes on a grid, with questions whose answers are known exactly.

Each clip is 16 s at 2 fps (32 frames of 112x112, a mean-grey background). The frame is a 4x4 grid of 28-pixel
cells and every shape sits inside one cell with a 3-pixel margin. After the processor's 2x resize a cell is 3.5
CLIP patches wide and a shape 2.5: each shape falls inside one bin of a 4x4 image ET-Proj pooling
(`image_pool_size=4`), so one token per frame carries it. The processor samples whole seconds (frames 0, 2, 4, ...),
where every shape sits exactly on a cell; odd frames show a moving shape half-way between two cells.

One to three shapes, all of different colours and kinds, appear at 0, 4 or 8 s (one of them at 0 s) and stay.
One of them, the mover, travels 1 or 2 cells in a straight line (left, right, up or down), one cell per second, then
stops. With other shapes present it either stops against one of them (touching: the cells share a side) or not.
Apart from that contact, shapes are never in neighbouring cells (diagonals included).

Events are timed for the sampler: 8 frames of a 16 s clip are seconds 0, 2, 4, 6, 8, 10, 12 and 15, and a model
that keeps one key frame per chunk of two (`chunk_size=2`, `frames_per_chunk=1`) keeps one of each window
{0, 2}, {4, 6}, {8, 10}, {12, 15} s. Shapes appear at a window's first frame, the mover is still in place at the
second frame of a window it is already present in, and it has arrived by 12 s: whichever frame the scorer keeps
in each window, the key frames show every shape from its window on, the mover before and after its move, and the
final contact. The move often ends between the two frames of a window, which is what the scorer's choice varies on.

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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..tiny import write_video

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 240), "yellow": (235, 215, 40)}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
COUNT_WORDS = ("zero", "one", "two", "three")
QUESTION_TYPES = ("colour", "shape", "direction", "count", "order", "touch")

GRID = 4  # cells per side
CELL = 28  # pixels per cell side
SIZE = GRID * CELL  # frame width and height
FPS = 2
SECONDS = 16
APPEAR_AT = (0, 4, 8)  # seconds: the first frame of a 4 s window
WINDOW = 4  # seconds per key-frame window of the 8-frame sampler
ARRIVED_BY = 12  # seconds: the last window's first frame
STEPS = (1, 2)  # cells the mover travels
# CLIP's (and, within 1/255, ImageNet's) mean colour: background pixels normalise to about zero in the pixel
# pipelines of both encoders, so the shapes carry most of what differs between clips.
BACKGROUND = (123, 117, 104)


@dataclass
class Shape:
    colour: str
    kind: str
    col: int  # cell at the moment it appears
    row: int
    appears: int  # second

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"


@dataclass
class Scene:
    shapes: list[Shape]
    mover: int  # index into shapes
    direction: str
    steps: int  # cells travelled
    start: int  # second at which the mover leaves its first cell
    target: int | None  # the other shape the touch question asks about (None with one shape)
    touches: bool  # whether the mover stops against the target

    @classmethod
    def from_dict(cls, values: dict) -> Scene:
        """The inverse of `dataclasses.asdict` (a record's `scene`)."""
        return cls(**{**values, "shapes": [Shape(**shape) for shape in values["shapes"]]})

    @property
    def arrival(self) -> int:
        return self.start + self.steps

    def mover_cell(self, second: float) -> tuple[float, float]:
        """(column, row) of the mover at `second`; fractional half-way between cells."""
        mover = self.shapes[self.mover]
        travelled = min(float(self.steps), max(0.0, second - self.start))
        dx, dy = DIRECTIONS[self.direction]
        return mover.col + dx * travelled, mover.row + dy * travelled

    def cells(self, second: float) -> list[tuple[float, float] | None]:
        """Each shape's (column, row) at `second`, None before it appears."""
        return [
            None if shape.appears > second else (self.mover_cell(second) if i == self.mover else (shape.col, shape.row))
            for i, shape in enumerate(self.shapes)
        ]


_ROWS, _COLS = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5


def shape_mask(kind: str, col: float, row: float) -> np.ndarray:
    """(SIZE, SIZE) boolean mask of a shape filling cell (col, row) but its outer pixel."""
    dx, dy = _COLS - (col + 0.5) * CELL, _ROWS - (row + 0.5) * CELL
    radius = CELL / 2 - 3
    if kind == "circle":
        return dx**2 + dy**2 <= radius**2
    if kind == "square":
        return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    # triangle pointing up: apex at the top centre, base along the bottom of the box
    return (dy >= -radius) & (dy <= radius) & (np.abs(dx) <= (dy + radius) / 2)


def render(scene: Scene) -> np.ndarray:
    """(SECONDS * FPS, SIZE, SIZE, 3) uint8 RGB frames."""
    frames = np.full((SECONDS * FPS, SIZE, SIZE, 3), BACKGROUND, dtype=np.uint8)
    for index in range(SECONDS * FPS):
        for shape, cell in zip(scene.shapes, scene.cells(index / FPS)):
            if cell is not None:
                frames[index][shape_mask(shape.kind, *cell)] = COLOURS[shape.colour]
    return frames


def _valid(scene: Scene) -> bool:
    """Shapes inside the grid and never in neighbouring cells, except the touching pair from the mover's arrival."""
    for second in np.arange(0, SECONDS, 1 / FPS):
        cells = scene.cells(second)
        for i, cell in enumerate(cells):
            if cell is None:
                continue
            if not all(0 <= c <= GRID - 1 for c in cell):
                return False
            for j in range(i):
                if cells[j] is None:
                    continue
                gap = max(abs(cell[0] - cells[j][0]), abs(cell[1] - cells[j][1]))
                touching_pair = scene.touches and {i, j} == {scene.mover, scene.target}
                if not (touching_pair and second > scene.arrival - 1) and gap < 2:  # closing in on its last step
                    return False
    return True


def make_scene(rng: random.Random) -> Scene:
    """A random valid scene (rejection sampling)."""
    count = rng.choice((1, 2, 3))
    touches = count > 1 and rng.random() < 0.5
    while True:
        colours = rng.sample(list(COLOURS), count)
        kinds = rng.sample(SHAPES, count)
        appears = [0] + sorted(rng.sample(APPEAR_AT[1:], count - 1))
        rng.shuffle(appears)
        shapes = [
            Shape(colour, kind, rng.randrange(GRID), rng.randrange(GRID), t)
            for colour, kind, t in zip(colours, kinds, appears)
        ]
        mover = rng.randrange(count)
        direction = rng.choice(list(DIRECTIONS))
        steps = rng.choice(STEPS)
        # The window before the move, {4i, 4i + 2} s with 4i + 2 <= start, must show the mover in both frames (never
        # empty: a mover appearing at 8 s can start at 10 s).
        start = rng.choice([
            s for s in range(2, ARRIVED_BY - steps + 1) if WINDOW * ((s - 2) // WINDOW) >= shapes[mover].appears
        ])
        target = rng.choice([i for i in range(count) if i != mover]) if count > 1 else None
        if touches:  # the target waits in the cell after the mover's last one
            dx, dy = DIRECTIONS[direction]
            shapes[target].col = shapes[mover].col + dx * (steps + 1)
            shapes[target].row = shapes[mover].row + dy * (steps + 1)
            if shapes[target].appears >= start + steps:
                continue
        scene = Scene(shapes, mover, direction, steps, start, target, touches)
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
    random order, which trains on several answers per encoded video. Every record also holds its clip's `scene`
    (shapes, mover, move and contact: the ground truth behind the answers).
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
                "types": [kind for kind, _, _ in group], "scene": asdict(scene),
            })
    data = out / "data.json"
    data.write_text(json.dumps(records, indent=1))
    return data
