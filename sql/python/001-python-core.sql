-- pgmlops_python core: where the server's Python finds packages, and what it has.

-- Adds the directory named by the GUC pgmlops.site_packages (e.g. a venv's site-packages
-- holding scikit-learn or sentence-transformers) to the server's sys.path, once per session.
-- They go BEFORE Debian's dist-packages, so the venv's numpy (2.x, which torch and
-- sentence-transformers need) wins over python3-numpy 1.24 (call it before importing numpy).
create or replace function mlops._py_setup() returns text
language plpython3u volatile set search_path = pg_catalog, pg_temp
as $$
import sys
extra = plpy.execute("select pg_catalog.current_setting('pgmlops.site_packages', true) as p")[0]["p"]
if extra:
    for path in reversed(extra.split(":")):
        if path and path not in sys.path:
            sys.path.insert(0, path)
return extra or ""
$$;
comment on function mlops._py_setup() is
  'Private: puts the directories in GUC pgmlops.site_packages (colon-separated) first on the server Python''s sys.path (ahead of dist-packages).';

-- What the server's Python can import, for support and for choosing inference flavors.
create or replace function mlops.python_info() returns jsonb
language plpython3u volatile set search_path = pg_catalog, pg_temp
as $$
import json, sys, importlib
plpy.execute("select mlops._py_setup()")
mods = {}
for name in ("numpy", "sklearn", "onnxruntime", "sentence_transformers", "torch"):
    try:
        mods[name] = getattr(importlib.import_module(name), "__version__", "unknown")
    except Exception:
        mods[name] = None
return json.dumps({"python": sys.version.split()[0], "executable": sys.executable, "modules": mods})
$$;
comment on function mlops.python_info() is
  'Python version of the server and versions of numpy, scikit-learn, onnxruntime, sentence-transformers, torch it can import (null when missing).';

grant execute on function mlops.python_info() to mlops_reader;
