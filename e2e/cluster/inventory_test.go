package main

import (
	"os"
	"strings"
	"testing"
)

func TestDefaultInventory(t *testing.T) {
	specs, err := loadInventory("inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]nodeSpec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	if len(specs) != 7 {
		t.Fatalf("want 7 nodes, got %d", len(specs))
	}
	h := byName["gpu-h100-1"]
	if h.GPUs != 8 || h.Labels["nvidia.com/gpu.product"] != "NVIDIA-H100-80GB-HBM3" ||
		h.Labels["nvidia.com/gpu.count"] != "8" || h.Labels["kubernetes.io/arch"] != "amd64" ||
		h.CPU.String() != "192" || h.Memory.String() != "2Ti" {
		t.Errorf("unexpected H100 node: %+v", h)
	}
	if len(h.Taints) != 1 || h.Taints[0].Key != "nvidia.com/gpu" || h.Taints[0].Value != "present" {
		t.Errorf("unexpected H100 taints: %+v", h.Taints)
	}
	e := byName["edge-0"]
	if e.Arch != "arm64" || e.Labels["kubernetes.io/arch"] != "arm64" || len(e.Taints) != 1 ||
		e.Taints[0].Key != "node-role.kubernetes.io/edge" || e.Taints[0].Value != "" {
		t.Errorf("unexpected edge node: %+v", e)
	}
	if _, ok := e.Labels["node-role.kubernetes.io/edge"]; !ok {
		t.Error("edge role label missing")
	}
	if c := byName["cpu-0"]; c.GPUs != 0 || c.Labels["nvidia.com/gpu.count"] != "" || c.Pods != 110 {
		t.Errorf("unexpected cpu node: %+v", c)
	}
}

func TestInventoryErrorsNameTheField(t *testing.T) {
	base := func(extra string) string {
		return "nodes:\n- {name: a, cpu: 1, memory: 1Gi}\n- {name: b, cpu: 1, memory: 1Gi}\n- {name: c, cpu: 1, memory: 1Gi" + extra + "}\n"
	}
	cases := map[string]string{
		base(", gpus: -1"):                                  "inventory.nodes[2].gpus: must be a non-negative integer",
		base(", gpus: eight"):                               "inventory.nodes[2].gpus: must be a non-negative integer",
		base(", gpus: 1.5"):                                 "inventory.nodes[2].gpus: must be a non-negative integer",
		base(", count: 0"):                                  "inventory.nodes[2].count: must be an integer >= 1",
		base(", memory: lots"):                              "inventory.nodes[2].memory:",
		base(", arch: s390x"):                               "inventory.nodes[2].arch: must be amd64 or arm64",
		base(", gpu: 1"):                                    "inventory.nodes[2].gpu: unknown field",
		base(", taints: [foo]"):                             "inventory.nodes[2].taints[0]:",
		base(", taints: ['a=b:Never']"):                     "inventory.nodes[2].taints[0]:",
		base(", labels: {'bad key!': x}"):                   `inventory.nodes[2].labels["bad key!"]: invalid label key`,
		base(", labels: {kubernetes.io/arch: arm64}"):       "inventory.nodes[2].labels: kubernetes.io/arch=arm64 contradicts arch amd64",
		"nodes:\n- {cpu: 1, memory: 1Gi}\n":                 "inventory.nodes[0].name: required",
		"nodes:\n- {name: Big_Node, cpu: 1, memory: 1Gi}\n": "inventory.nodes[0].name:",
		"nodes:\n- {name: a, memory: 1Gi}\n":                "inventory.nodes[0].cpu: required",
		"nodes:\n- {name: a, cpu: 1, memory: 1Gi}\n- {name: a, cpu: 1, memory: 1Gi}\n": "inventory.nodes[1].name: node \"a-0\" is also produced by inventory.nodes[0]",
		"nodes: []\n":     "inventory.nodes: must be a non-empty list",
		"hosts: []\n":     "inventory.hosts: unknown field",
		"- just a list\n": "inventory: must be a mapping",
		"nodes: [\n":      "inventory: not valid YAML",
	}
	for in, want := range cases {
		_, err := parseInventory([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("input %q:\n got  %v\n want %q", in, err, want)
		}
	}
}

func TestInventoryFileOverride(t *testing.T) {
	f := t.TempDir() + "/inv.yaml"
	if err := os.WriteFile(f, []byte("nodes:\n- name: big\n  count: 3\n  cpu: 500m\n  memory: 1Gi\n  gpus: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	specs, err := loadInventory(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 || specs[2].Name != "big-2" || specs[0].CPU.String() != "500m" || specs[0].Pods != 110 {
		t.Fatalf("unexpected: %+v", specs)
	}
}
