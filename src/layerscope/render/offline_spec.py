"""A plotly figure spec with every part that would reach the network removed, for pages that work offline.

plotly.js fetches when a spec asks it to: an image's ``source`` (``layout.images[]`` and the ``image`` trace),
a choropleth's ``geojson``, the base maps and topojson of map and geo traces (from plot.ly, Mapbox, Carto or
OpenStreetMap), a map subplot's ``style`` and its layers' ``source``, and CSS ``url(...)`` inside the
``style`` attribute plotly accepts in text (``<span style="...">``). Those are dropped (map and geo traces whole,
and their subplots, outside a template's defaults); ``data:`` URIs stay (they are the page's own bytes). Everything
else, text included, is kept as written.

Example:
    >>> spec = {"data": [{"type": "bar", "y": [1]}], "layout": {"images": [{"source": "http://x/y.png"}]}}
    >>> offline_spec(spec)
    ['layout.images[0].source']
    >>> spec["layout"]
    {'images': [{}]}
"""

from __future__ import annotations

import re

#: subplots drawn on base maps fetched from the network (``geo``, ``geo2``, ``mapbox``, ``map3``, ...)
_MAP_SUBPLOT = re.compile(r"^(geo|mapbox|map)\d*$")
#: attributes whose string value plotly loads as a URL (a ``data:`` URI excepted)
_URL_KEYS = frozenset({"source", "geojson", "topojson", "topojsonURL"})
#: traces drawn on base maps or topojson that plotly.js fetches (their subplots draw nothing without them)
MAP_TRACES = frozenset(
    {"scattergeo", "choropleth", "scattermapbox", "choroplethmapbox", "densitymapbox", "scattermap", "choroplethmap",
     "densitymap"}
)  # fmt: skip
#: a ``style="..."`` attribute in plotly's pseudo-HTML text (as plotly.js's own STYLEMATCH finds it)
_STYLE_ATTRIBUTE = re.compile(r"""(^|[\s"'])style\s*=\s*("[^"]*"|'[^']*')""", re.IGNORECASE)
#: what lets CSS load something: url(), image-set(), @import, and escapes that could spell them
_CSS_FETCH = re.compile(r"url|image|@|\\|//", re.IGNORECASE)


def offline_spec(spec: dict) -> list[str]:
    """Remove, in place, every part of ``spec`` (``data``, ``layout``, ``frames``) that would reach the network;
    returns where each removed part was (``"layout.images[0].source"``)."""
    removed: list[str] = []
    _walk(spec, "", removed)
    return removed


def _is_map_trace(trace: dict) -> bool:
    kind = trace.get("type", "scatter")
    return isinstance(kind, str) and kind.lower() in MAP_TRACES


def _walk(node, path: str, removed: list[str]):
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            where = f"{path}.{key}" if path else str(key)
            if key == "data" and isinstance(value, list):
                maps = {i for i, t in enumerate(value) if isinstance(t, dict) and _is_map_trace(t)}
                removed += [f"{where}[{i}] (a {str(value[i].get('type'))[:40]} trace)" for i in sorted(maps)]
                node[key] = value = [t for i, t in enumerate(value) if i not in maps]
            if _MAP_SUBPLOT.match(str(key)) and isinstance(value, dict) and "template" not in path:
                del node[key]  # a template's defaults draw nothing themselves
                removed.append(where)
            elif key in _URL_KEYS and isinstance(value, str) and not value.startswith("data:"):
                del node[key]
                removed.append(where)
            elif isinstance(value, str):
                node[key] = _without_fetching_style(value, where, removed)
            else:
                _walk(value, where, removed)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str):
                node[i] = _without_fetching_style(value, f"{path}[{i}]", removed)
            else:
                _walk(value, f"{path}[{i}]", removed)


def _without_fetching_style(text: str, where: str, removed: list[str]) -> str:
    if "<" not in text or "style" not in text.lower():
        return text

    def drop(match: re.Match) -> str:
        if not _CSS_FETCH.search(match[2]):
            return match[0]
        removed.append(f"{where} (a style attribute)")
        return match[1].strip()  # a space before the attribute goes with it; a quote stays

    return _STYLE_ATTRIBUTE.sub(drop, text)
