"""Validates custom resources against the CRD that defines them, as the API server would with
strict field validation (kubectl's default since 1.25): apiVersion and kind must be the CRD's,
the object must match the CRD's openAPIV3Schema with no unknown field, its metadata must be a
valid ObjectMeta (from the Kubernetes schemas kubernetes-validate ships) and its name a DNS-1123
subdomain.

usage: custom_resource.py CRD.yaml RESOURCE.yaml [K8S_VERSION, e.g. 1.34.0; default the newest]
Prints one line per resource; exits 1 when one is invalid.
"""
import copy
import re
import sys

import jsonschema
import yaml
from kubernetes_validate import utils
from referencing import Registry, Resource


def object_meta_validator(version):
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    meta = utils.schema_contents(f"{schema_dir}/objectmeta-meta-v1.json", version)
    definitions = utils.schema_contents(f"{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(meta) @ Registry())
    return jsonschema.Draft202012Validator(meta, registry=registry)


def strict(schema):
    """The schema with unknown fields refused wherever it lists the known ones."""
    schema = copy.deepcopy(schema)
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node.get("properties"), dict):
            node.setdefault("additionalProperties", False)
            pending.extend(v for k, v in node["properties"].items() if k != "metadata")
    return schema


DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def main(crd_file, resource_file, version):
    with open(crd_file) as f:
        crd = yaml.safe_load(f)
    spec = crd["spec"]
    schemas = {f"{spec['group']}/{v['name']}": strict(v["schema"]["openAPIV3Schema"])
               for v in spec["versions"] if v.get("served")}
    meta = object_meta_validator(version)
    failed = False
    with open(resource_file) as f:
        resources = [r for r in yaml.safe_load_all(f) if r]
    for resource in resources:
        what = f"{resource_file}: {resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        errors = []
        if resource.get("kind") != spec["names"]["kind"]:
            errors.append(f"kind {resource.get('kind')!r} is not {spec['names']['kind']!r}")
        schema = schemas.get(resource.get("apiVersion"))
        if schema is None:
            errors.append(f"apiVersion {resource.get('apiVersion')!r} is not one of {sorted(schemas)}")
        else:
            errors += [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(resource)]
        errors += [f"metadata: {e.message}" for e in meta.iter_errors(resource.get("metadata"))]
        name = (resource.get("metadata") or {}).get("name", "")
        if len(name) > 253 or not DNS_1123_SUBDOMAIN.match(name):
            errors.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
        if errors:
            failed = True
            print(f"FAIL {what}: " + "; ".join(errors))
        else:
            print(f"PASS {what} against {crd['metadata']['name']} and ObjectMeta {version}")
    if not resources:
        print(f"FAIL {resource_file}: no resource")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else utils.latest_version()))
