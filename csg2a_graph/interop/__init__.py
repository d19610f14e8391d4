"""Bridges to other tools: ``csg2a_graph.interop.drevalpy`` (drevalpy 1.6, ``pip install 'csg2a-graph[drevalpy]'``)."""
