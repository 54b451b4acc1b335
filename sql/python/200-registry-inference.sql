-- In-database inference (pgmlops_python): mlops.predict / mlops.predict_batch load a version's
-- artifact once per session (cache keyed by version id + sha256) and score with numpy (linear),
-- scikit-learn (pickle) or onnxruntime. The linear flavor gives the same numbers as mlops.predict_sql.
--
-- scikit-learn is optional: the server's Python (Debian's /usr/bin/python3) must be able to import
-- it. Point the GUC pgmlops.site_packages at a site-packages directory that has it, e.g.
--   alter database mydb set pgmlops.site_packages = '/srv/venv/lib/python3.11/site-packages';
-- The registry puts those directories FIRST on sys.path before numpy is imported in the session,
-- so a venv's numpy (that its scikit-learn / scipy need) wins over Debian's numpy.

-- Installs the session's model loader and cache into GD (shared by the PL/Python functions).
create or replace function mlops._py_registry_setup() returns void
language plpython3u volatile set search_path = pg_catalog, pg_temp
as $$
import sys
extra = plpy.execute("select pg_catalog.current_setting('pgmlops.site_packages', true) as p")[0]["p"] or ""
if "numpy" not in sys.modules:
    for path in reversed([p for p in extra.split(":") if p]):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
else:
    plpy.execute("select mlops._py_setup()")


class Loaded:
    __slots__ = ("flavor", "width", "predict_rows", "key")


def load(vid):
    import hashlib
    import json
    import numpy as np
    plan = GD.get("pgmlops_reg_fetch")
    if plan is None:
        plan = plpy.prepare("select v.flavor, v.artifact, v.artifact_uri, v.artifact_sha256, v.signature::text as signature, "
                            "v.version, m.name from mlops.model_versions v join mlops.models m on m.id = v.model_id "
                            "where v.id = $1", ["bigint"])
        GD["pgmlops_reg_fetch"] = plan
    row = plan.execute([vid])[0]
    what = "version %s of model %s" % (row["version"], row["name"])
    data = row["artifact"]
    if data is None:
        plpy.error("%s is stored by URI (%s); in-database inference needs the artifact in the database" % (what, row["artifact_uri"]),
                   sqlstate="0A000")
    if hashlib.sha256(data).hexdigest() != row["artifact_sha256"]:
        plpy.error("artifact of %s does not match its sha256 (corrupted)" % what, sqlstate="XX001")
    signature = json.loads(row["signature"])
    width = None
    if isinstance(signature.get("inputs"), list):
        width = len(signature["inputs"])
    elif isinstance(signature.get("n_features"), int):
        width = signature["n_features"]
    m = Loaded()
    m.flavor = row["flavor"]
    if m.flavor == "linear":
        spec = json.loads(bytes(data).decode("utf-8"))
        coef = np.asarray(spec["coefficients"], dtype=np.float64)
        intercept = float(spec.get("intercept", 0.0))
        logistic = spec.get("link", "identity") == "logistic"
        width = len(coef)

        def predict_rows(x, coef=coef, intercept=intercept, logistic=logistic):
            # the same answers as mlops.predict_sql: a product or sum leaving float8's range (which
            # PostgreSQL's float arithmetic refuses, underflow included) is an error, the logit is clamped
            with np.errstate(all="ignore"):
                products = x * coef
                z = products.sum(axis=-1) + intercept
            if not np.all(np.isfinite(z)) or np.any((products == 0) & (x != 0) & (coef != 0)):
                plpy.error("features times coefficients leave the float8 range (argument features)", sqlstate="22003")
            return 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0))) if logistic else z
    elif m.flavor == "sklearn":
        try:
            import sklearn  # noqa: F401
        except Exception as exc:
            plpy.error("scikit-learn is not importable by the server's Python (%s: %s)" % (type(exc).__name__, exc), sqlstate="0A000",
                       hint="Set the GUC pgmlops.site_packages to a site-packages directory holding scikit-learn "
                            "(and its numpy), in a new session.")
        import pickle
        try:
            est = pickle.loads(bytes(data))
        except Exception as exc:
            plpy.error("artifact of %s cannot be unpickled (%s: %s)" % (what, type(exc).__name__, exc), sqlstate="22023")
        if not hasattr(est, "predict"):
            plpy.error("artifact of %s has no predict method" % what, sqlstate="22023")
        if width is None:
            width = getattr(est, "n_features_in_", None)

        def predict_rows(x, est=est):
            return np.asarray(est.predict(x), dtype=np.float64).reshape(-1)
    elif m.flavor == "onnx":
        try:
            import onnxruntime as ort
        except Exception as exc:
            plpy.error("onnxruntime is not importable by the server's Python (%s)" % exc, sqlstate="0A000",
                       hint="Set the GUC pgmlops.site_packages to a site-packages directory holding onnxruntime.")
        try:
            sess = ort.InferenceSession(bytes(data), providers=["CPUExecutionProvider"])
        except Exception as exc:
            plpy.error("artifact of %s is not a loadable ONNX model (%s)" % (what, exc), sqlstate="22023")
        name = sess.get_inputs()[0].name

        def predict_rows(x, sess=sess, name=name):
            return np.asarray(sess.run(None, {name: x.astype(np.float32)})[0], dtype=np.float64).reshape(-1)
    else:
        plpy.error("%s has flavor %s, which in-database inference cannot run" % (what, m.flavor), sqlstate="0A000")
    m.width = width
    m.predict_rows = predict_rows
    return m


def model(name, ref):
    plan = GD.get("pgmlops_reg_resolve")
    if plan is None:
        plan = plpy.prepare("select v.id, v.artifact_sha256 from mlops.model_versions v "
                            "where v.id = mlops._resolve_version($1, $2)", ["text", "text"])
        GD["pgmlops_reg_resolve"] = plan
    row = plan.execute([name, ref])[0]
    cache = GD.setdefault("pgmlops_models", {})
    key = (row["id"], row["artifact_sha256"])
    m = cache.get(key)
    if m is None:
        m = load(row["id"])
        m.key = key
        cache[key] = m
    return m


def cached_predict(m, x):
    """One-row prediction through the opt-in result cache (see mlops.predict_cache)."""
    import time
    c = GD["pgmlops_registry"]["cache"]
    if c["ttl"] <= 0:
        return float(m.predict_rows(x)[0])
    now = time.monotonic()
    key = (m.key, x.tobytes())
    hit = c["entries"].get(key)
    if hit is not None and hit[1] > now:
        c["hits"] += 1
        return hit[0]
    c["misses"] += 1
    value = float(m.predict_rows(x)[0])
    entries = c["entries"]
    if len(entries) >= c["max_entries"]:
        for old in list(entries)[: len(entries) // 10 + 1]:
            del entries[old]
    entries.pop(key, None)
    entries[key] = (value, now + c["ttl"])
    return value


def matrix(features, m, rows):
    import numpy as np
    try:
        x = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        plpy.error("features must be a rectangular array of numbers without nulls (argument features)", sqlstate="22023")
    if rows and x.ndim != 2:
        plpy.error("features must be a 2-D array, one row per prediction (argument features)", sqlstate="22023")
    if not rows and x.ndim != 1:
        plpy.error("features must be one vector; use mlops.predict_batch for rows (argument features)", sqlstate="22023")
    if x.size == 0:
        plpy.error("features must be a non-empty array (argument features)", sqlstate="22023")
    if not np.all(np.isfinite(x)):
        plpy.error("features contains NaN or infinity (argument features)", sqlstate="22023")
    got = x.shape[-1]
    if m.width is not None and got != m.width:
        plpy.error("features %shas %s values but the model expects %s (argument features)" % ("rows " if rows else "", got, m.width),
                   sqlstate="22023")
    return x if rows else x.reshape(1, -1)


GD["pgmlops_registry"] = {"model": model, "matrix": matrix, "predict_one": cached_predict,
                          "cache": {"ttl": 0.0, "max_entries": 100000, "entries": {}, "hits": 0, "misses": 0}}
$$;
comment on function mlops._py_registry_setup() is
  'Private: installs the per-session model cache (keyed by version id + sha256) and loaders (linear, sklearn, onnx) into GD.';

-- Scores one feature vector with any in-database flavor.
create or replace function mlops.predict(model text, alias_or_version text, features float8[]) returns float8
language plpython3u volatile set search_path = pg_catalog, pg_temp
as $$
reg = GD.get("pgmlops_registry")
if reg is None:
    plpy.execute("select mlops._py_registry_setup()")
    reg = GD["pgmlops_registry"]
m = reg["model"](model, alias_or_version)
if features is None:
    plpy.error("features must not be null (argument features)", sqlstate="22023")
return reg["predict_one"](m, reg["matrix"](features, m, False))
$$;
comment on function mlops.predict(text, text, float8[]) is
  'Scores one feature vector with a version (number, semver, latest or alias) of a model: linear (numpy, same as '
  'mlops.predict_sql), sklearn (needs scikit-learn importable, see GUC pgmlops.site_packages) or onnx. The artifact '
  'is loaded and sha256-checked once per session.';

-- Scores features given as jsonb: an array, or an object keyed by the signature's input names.
create or replace function mlops.predict(model text, alias_or_version text, features jsonb) returns float8
language plpython3u volatile set search_path = pg_catalog, pg_temp
as $$
import json
reg = GD.get("pgmlops_registry")
if reg is None:
    plpy.execute("select mlops._py_registry_setup()")
    reg = GD["pgmlops_registry"]
m = reg["model"](model, alias_or_version)
data = json.loads(features) if features is not None else None
if isinstance(data, dict):
    names = plpy.execute(plpy.prepare("select array(select pg_catalog.jsonb_array_elements_text(v.signature -> 'inputs')) as names "
                                      "from mlops.model_versions v where v.id = mlops._resolve_version($1, $2)",
                                      ["text", "text"]), [model, alias_or_version])[0]["names"]
    if not names:
        plpy.error("features given by name but the model declares no feature names (argument features)", sqlstate="22023",
                   hint="Pass an array, or register the version with signature => '{\"inputs\": [names]}'.")
    missing = [n for n in names if not isinstance(data.get(n), (int, float)) or isinstance(data.get(n), bool)]
    if missing:
        plpy.error("features lacks numeric values for %s (argument features)" % ", ".join(missing), sqlstate="22023")
    data = [data[n] for n in names]
if not isinstance(data, list):
    plpy.error("features must be a jsonb object or array (argument features)", sqlstate="22023")
return reg["predict_one"](m, reg["matrix"](data, m, False))
$$;
comment on function mlops.predict(text, text, jsonb) is
  'Scores features given as jsonb (array, or object keyed by the signature''s input names) with any in-database flavor.';

-- Scores many rows (2-D array) in one call: one numpy / sklearn call for the whole batch.
create or replace function mlops.predict_batch(model text, alias_or_version text, features float8[]) returns float8[]
language plpython3u volatile set search_path = pg_catalog, pg_temp
as $$
reg = GD.get("pgmlops_registry")
if reg is None:
    plpy.execute("select mlops._py_registry_setup()")
    reg = GD["pgmlops_registry"]
m = reg["model"](model, alias_or_version)
if features is None:
    plpy.error("features must not be null (argument features)", sqlstate="22023")
return m.predict_rows(reg["matrix"](features, m, True)).tolist()
$$;
comment on function mlops.predict_batch(text, text, float8[]) is
  'Scores a 2-D array of feature rows with any in-database flavor in one call; returns one prediction per row, in order.';

-- Opt-in inference result cache of this session (seed: neonexcore): one-row predictions of the same
-- version and features are served from memory for ttl_seconds. Results of a version never change
-- (versions are immutable; aliases are resolved on every call), so the TTL only bounds memory.
create or replace function mlops.predict_cache(ttl_seconds float8 default null) returns jsonb
language plpython3u volatile set search_path = pg_catalog, pg_temp
as $$
import json
import math
reg = GD.get("pgmlops_registry")
if reg is None:
    plpy.execute("select mlops._py_registry_setup()")
    reg = GD["pgmlops_registry"]
c = reg["cache"]
if ttl_seconds is not None:
    if math.isnan(ttl_seconds) or math.isinf(ttl_seconds) or ttl_seconds < 0:
        plpy.error("ttl_seconds must be a finite number >= 0 (argument ttl_seconds)", sqlstate="22023")
    c["ttl"] = float(ttl_seconds)
    if ttl_seconds == 0:
        c["entries"].clear()
models = [{"version_id": k[0], "sha256": k[1], "flavor": v.flavor} for k, v in GD.get("pgmlops_models", {}).items()]
return json.dumps({"ttl_seconds": c["ttl"], "entries": len(c["entries"]), "hits": c["hits"], "misses": c["misses"],
                   "loaded_models": models})
$$;
comment on function mlops.predict_cache(float8) is
  'Session inference result cache for one-row mlops.predict (opt-in): ttl_seconds > 0 enables it, 0 disables and '
  'clears it, null only reports. Returns ttl, entries, hits, misses and the artifacts loaded in this session.';

grant execute on function mlops.predict_cache(float8) to mlops_reader;
grant execute on function mlops._py_registry_setup(), mlops.predict(text, text, float8[]), mlops.predict(text, text, jsonb),
                          mlops.predict_batch(text, text, float8[]) to mlops_reader;
