"""The map of France by department: the committed outlines cover every department, the build's geometry reads and
writes paths faithfully, and the renderer colours, labels and escapes as it should."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from app import formats
from app.geo.dataset import departments
from app.maps.build import frames
from app.maps.geometry import Topology, bounds, fit, path, simplified, svg_rings
from app.maps.render import HATCH, OUTSIDE, PALETTE, Choropleth, choropleth, highlight
from app.maps.shapes import SPRITE_FILE, map_data, sprite

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
OVERSEAS = {"971": "Guadeloupe", "972": "Martinique", "973": "Guyane", "974": "La Réunion", "976": "Mayotte"}


def rendered(m: Choropleth, **options: object) -> str:
    # Autoescaped, as Litestar's Jinja engine is.
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    formats.register(environment)
    template = environment.from_string('{% from "_map.html" import choropleth_map %}{{ choropleth_map(m, "carte", '
                                       'compact=compact) }}')
    return template.render(m=m, compact=options.get("compact", False))


def test_the_committed_map_has_one_outline_per_department_the_platform_knows() -> None:
    known = {row.code for row in departments()}
    drawn = [shape.code for shape in map_data().shapes]
    assert len(known) == 101
    assert sorted(drawn) == sorted(known)  # a department added to app/geo without an outline fails here
    assert all(svg_rings(shape.path) for shape in map_data().shapes)


def test_each_overseas_department_lies_in_its_own_inset_frame() -> None:
    data = map_data()
    shapes = {shape.code: shape for shape in data.shapes}
    assert [frame.code for frame in data.insets] == list(OVERSEAS)
    for frame in data.insets:
        left, top, right, bottom = bounds(svg_rings(shapes[frame.code].path))
        assert frame.x <= left < right <= frame.x + frame.width
        assert frame.y <= top < bottom <= frame.y + frame.height <= data.height
    mainland = [svg_rings(shape.path) for code, shape in shapes.items() if code not in OVERSEAS]
    assert max(bounds(rings)[3] for rings in mainland) < min(frame.y for frame in data.insets)


def test_the_sprite_the_pages_reference_holds_the_committed_outlines() -> None:
    assert SPRITE_FILE.read_bytes() == sprite(map_data())


def test_svg_paths_are_read_with_relative_moves_after_a_close() -> None:
    rings = svg_rings("m 10,10 5,0 0,5 z m 20,0 1,1 -1,1 z M 1 2 L 3 4 5 6 Z")
    assert rings == [[(10, 10), (15, 10), (15, 15)], [(30, 10), (31, 11), (30, 12)], [(1, 2), (3, 4), (5, 6)]]


def test_written_paths_read_back_as_the_same_points_to_a_tenth() -> None:
    rings = [[(10.04, 20.0), (12.5, 19.96), (13.0, 25.0), (9.5, 24.0)], [(100.0, 100.0), (101.0, 100.0), (101.0, 99.0)]]
    text = path(rings)
    assert text == "M10 20l2.5 0 0.5 5-3.5-1zM100 100l1 0 0-1z"
    assert svg_rings(text) == [[(10, 20), (12.5, 20), (13, 25), (9.5, 24)], [(100, 100), (101, 100), (101, 99)]]


def test_simplifying_drops_points_on_a_straight_edge_and_tiny_islets() -> None:
    square = [(0.0, 0.0), (5.0, 0.05), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)]
    islet = [(50.0, 50.0), (50.5, 50.0), (50.5, 50.5)]
    assert simplified([square, islet], tolerance=0.3, min_size=1.0) == [[(0, 0), (10, 0), (10, 10), (0, 10)]]
    assert simplified([islet], tolerance=0.3, min_size=1.0) == [islet]  # a shape keeps its only outline


def test_topojson_arcs_are_decoded_reversed_and_fitted() -> None:
    # Two quantized, delta-encoded arcs; the ring walks the second one backwards (~1).
    topology = Topology(arcs=[[[0, 0], [10, 0], [0, 10]], [[0, 0], [0, 10], [10, 0]]], scale=(0.5, 0.25),
                        translate=(40.0, -10.0))
    [[ring]] = topology.polygons({"type": "Polygon", "arcs": [[0, ~1]]})
    assert ring == [(40.0, -10.0), (45.0, -10.0), (45.0, -7.5), (40.0, -7.5), (40.0, -10.0)]
    [fitted] = fit([ring], (0.0, 0.0, 100.0, 100.0))
    assert bounds([fitted]) == (0.0, 25.0, 100.0, 75.0)  # 2:1 shape, centred in a square
    assert [f.code for f in frames(613, 600)] == list(OVERSEAS)


def test_departments_take_the_class_of_their_figure_and_the_legend_says_its_unit() -> None:
    m = choropleth({"11": 0.2, "34": 2.4, "75": 5.0, "971": 0.0, "2A": None}, caption="Bénévoles par département",
                   unit="bénévoles pour 1 000 habitants", scope=["11", "34", "75", "971", "2A"])
    by_code = {area.code: area for area in m.areas}
    assert len(m.areas) == 101
    assert [by_code[code].level for code in ("11", "34", "75", "971")] == ["0", "2", "4", "0"]
    assert by_code["34"].fill == PALETTE[2] and by_code["34"].text == "2,4"
    assert (by_code["2A"].level, by_code["2A"].fill) == ("none", HATCH)  # in the scope, no figure: hatched
    assert (by_code["01"].level, by_code["01"].fill) == ("out", OUTSIDE)
    assert [entry.label for entry in m.legend] == ["moins de 1,0", "de 1,0 à moins de 2,0", "de 2,0 à moins de 3,0",
                                                   "de 3,0 à moins de 4,0", "4,0 ou plus", "pas de donnée",
                                                   "hors du périmètre"]
    assert [area.code for area in m.rows] == ["11", "2A", "34", "75", "971"]

    html = rendered(m)
    assert len(re.findall(r"<use [^>]*data-code=", html)) == 101
    assert re.search(r'data-code="34" data-level="2" fill="#4a98c9"><title>Hérault \(34\) : 2,4</title>', html)
    assert 'data-code="2A" data-level="none" fill="url(#carte-hatch)"' in html
    assert "(bénévoles pour 1 000 habitants)" in html and "Bénévoles pour 1 000 habitants</th>" in html
    assert re.search(r'<tr data-department="2A"><th scope="row">Corse-du-Sud \(2A\)</th><td>pas de donnée</td>', html)
    assert "CC BY 4.0" in html and 'aria-hidden="true"' in html


def test_the_overseas_insets_are_drawn_with_their_names() -> None:
    html = rendered(choropleth({}, caption="Carte", unit="bénévoles"))
    for code, name in OVERSEAS.items():
        assert f'href="/static/maps/departements.svg#d{code}"' in html
        assert re.search(rf"<rect [^>]*/><text [^>]*>{name}</text>", html)


def test_labels_and_figures_are_escaped_in_the_picture_and_the_table() -> None:
    m = choropleth({"11": 1.0}, caption="<script>alert(1)</script>", unit="<b>unité</b>",
                   shown=lambda value: f"<i>{value}</i>")
    html = rendered(m)
    assert "<script>" not in html and "<i>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Aude (11) : &lt;i&gt;1.0&lt;/i&gt;</title>" in html


def test_a_compact_map_draws_the_rest_of_france_as_one_shape() -> None:
    m = highlight(["11", "34"], caption="Départements de l'urgence", inside="Concerné", outside="Autre")
    html = rendered(m, compact=True)
    assert re.findall(r'data-code="([^"]+)"', html) == ["*", "11", "34"]
    assert len(html) < 3_500  # the hot page carries no outline, only references
    assert [entry.label for entry in m.legend] == ["Concerné", "Autre"]
    assert re.search(r'<tr data-department="34"><th scope="row">Hérault \(34\)</th><td>Concerné</td>', html)


def test_legend_bounds_read_exactly_at_the_precision_the_figures_are_shown() -> None:
    per_thousand = choropleth({"11": 0.11, "34": 0.0}, caption="Carte", unit="bénévoles pour 1 000 habitants",
                              shown=lambda value: formats.decimal(value, 2), resolution=0.01)
    assert [e.label for e in per_thousand.legend][:2] == ["moins de 0,05", "de 0,05 à moins de 0,10"]
    assert {a.code: a.level for a in per_thousand.areas if a.code in ("11", "34")} == {"11": "2", "34": "0"}
    boundaries = choropleth({"11": 0.3, "34": 0.099, "75": 0.5}, caption="Carte", unit="u", resolution=0.01,
                            shown=lambda value: formats.decimal(value, 2))
    assert {a.code: a.level for a in boundaries.areas if a.text} == {"11": "3", "34": "1", "75": "4"}
    shares = choropleth({"11": 40.0}, caption="Carte", unit="%", shown=lambda v: f"{formats.integer(v)} %",
                        resolution=1, up_to=100)
    assert shares.legend[0].label == "moins de 20 %" and shares.legend[4].label == "80 % ou plus"
    assert next(a.level for a in shares.areas if a.code == "11") == "2"
