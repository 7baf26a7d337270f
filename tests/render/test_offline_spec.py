"""``offline_spec``: every part of a plotly spec that plotly.js would fetch is removed; the rest is kept as written."""

from __future__ import annotations

import copy

from layerscope.render.offline_spec import offline_spec

PIXEL = "data:image/png;base64,iVBORw0KGgo="


def test_sources_maps_and_css_that_fetch_are_removed():
    spec = {
        "data": [
            {
                "type": "bar",
                "y": [1],
                "text": ["<b style='color:red'>kept</b>", '<span style="fill:url(//x.test/a)">s</span>'],
            },
            {"type": "image", "source": "https://x.test/i.png"},
            {"type": "scattergeo", "lon": [1]},
            {"type": "densitymap", "lon": [1]},
            {"type": "treemap", "labels": ["a"], "parents": [""]},
        ],
        "layout": {
            "images": [{"source": "http://x.test/a.png", "x": 0}, {"source": PIXEL}],
            "geo": {"showland": True},
            "mapbox2": {"style": "mapbox://styles/x"},
            "template": {"layout": {"geo": {"bgcolor": "white"}, "images": [{"source": "//x.test/t.png"}]}},
        },
        "frames": [{"data": [{"type": "choropleth", "geojson": "https://x.test/g.json"}]}],
    }
    removed = offline_spec(spec)
    assert "x.test" not in repr(spec)
    assert [t["type"] for t in spec["data"]] == ["bar", "image", "treemap"]  # a treemap draws no map
    assert "source" not in spec["data"][1]
    assert spec["data"][0]["text"] == ["<b style='color:red'>kept</b>", "<span>s</span>"]
    assert spec["layout"]["images"] == [{"x": 0}, {"source": PIXEL}]
    assert spec["layout"]["template"]["layout"]["geo"] == {"bgcolor": "white"}  # defaults draw nothing
    assert spec["frames"] == [{"data": []}]
    assert "layout.images[0].source" in removed and "data[2] (a scattergeo trace)" in removed
    assert len(removed) == 9


def test_a_spec_that_fetches_nothing_is_unchanged():
    spec = {
        "data": [
            {
                "type": "scatter",
                "x": [1, 2],
                "text": ["http://a.test is text", "url(x)", "<a href='https://a.test'>link</a>"],
            }
        ],
        "layout": {"title": {"text": "<i>t</i>"}, "font": {"family": "Open Sans", "style": "italic"}},
    }
    before = copy.deepcopy(spec)
    assert offline_spec(spec) == [] and spec == before
