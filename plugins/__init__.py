"""Built-in plugins, each registered through the ``engine`` entry-point group exactly like a
third-party package (see ``[project.entry-points.engine]`` in pyproject.toml)."""
