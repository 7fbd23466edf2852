package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// The inventory file describes the simulated nodes; see README.md. Each entry
// of `nodes` is a group of identical nodes named <name>-0 … <name>-<count-1>.
//
// It is decoded into generic values and checked field by field, so that every
// mistake is reported with its path, e.g.
//
//	inventory.nodes[2].gpus: must be a non-negative integer

// nodeSpec is one validated simulated node.
type nodeSpec struct {
	Name             string
	Arch             string
	CPU              resource.Quantity
	Memory           resource.Quantity
	EphemeralStorage resource.Quantity
	Pods             int64
	GPUs             int64
	Labels           map[string]string
	Taints           []corev1.Taint
}

const gpuResource = "nvidia.com/gpu"

var groupFields = map[string]bool{
	"name": true, "count": true, "arch": true, "cpu": true, "memory": true,
	"ephemeralStorage": true, "pods": true, "gpus": true, "labels": true, "taints": true,
}

// fieldError is an inventory mistake with the path of the offending field.
type fieldError struct {
	path, msg string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func errAt(path, format string, a ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, a...)}
}

// loadInventory reads and validates an inventory file.
func loadInventory(path string) ([]nodeSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseInventory(data)
}

func parseInventory(data []byte) ([]nodeSpec, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errAt("inventory", "not valid YAML: %v", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, errAt("inventory", "must be a mapping with a `nodes` list")
	}
	for k := range top {
		if k != "nodes" {
			return nil, errAt("inventory."+k, "unknown field (expected only `nodes`)")
		}
	}
	groups, ok := top["nodes"].([]any)
	if !ok || len(groups) == 0 {
		return nil, errAt("inventory.nodes", "must be a non-empty list")
	}
	var out []nodeSpec
	seen := map[string]string{}
	for i, g := range groups {
		path := fmt.Sprintf("inventory.nodes[%d]", i)
		specs, err := parseGroup(path, g)
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			if prev, dup := seen[s.Name]; dup {
				return nil, errAt(path+".name", "node %q is also produced by %s", s.Name, prev)
			}
			seen[s.Name] = path
		}
		out = append(out, specs...)
	}
	return out, nil
}

func parseGroup(path string, raw any) ([]nodeSpec, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, errAt(path, "must be a mapping")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !groupFields[k] {
			return nil, errAt(path+"."+k, "unknown field")
		}
	}

	name, ok := m["name"].(string)
	if !ok || name == "" {
		return nil, errAt(path+".name", "required, a lowercase DNS label")
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return nil, errAt(path+".name", "%s", strings.Join(errs, "; "))
	}
	count, err := intField(m, path, "count", 1, 1)
	if err != nil {
		return nil, err
	}
	arch := "amd64"
	if v, present := m["arch"]; present {
		s, _ := v.(string)
		if s != "amd64" && s != "arm64" {
			return nil, errAt(path+".arch", "must be amd64 or arm64")
		}
		arch = s
	}
	cpu, err := quantityField(m, path, "cpu", "")
	if err != nil {
		return nil, err
	}
	mem, err := quantityField(m, path, "memory", "")
	if err != nil {
		return nil, err
	}
	eph, err := quantityField(m, path, "ephemeralStorage", "1Ti")
	if err != nil {
		return nil, err
	}
	pods, err := intField(m, path, "pods", 110, 1)
	if err != nil {
		return nil, err
	}
	gpus, err := intField(m, path, "gpus", 0, 0)
	if err != nil {
		return nil, err
	}
	labels, err := labelsField(m, path)
	if err != nil {
		return nil, err
	}
	if v, set := labels[corev1.LabelArchStable]; set && v != arch {
		return nil, errAt(path+".labels", "%s=%s contradicts arch %s", corev1.LabelArchStable, v, arch)
	}
	taints, err := taintsField(m, path)
	if err != nil {
		return nil, err
	}
	if count > 1000 {
		return nil, errAt(path+".count", "at most 1000")
	}

	specs := make([]nodeSpec, 0, count)
	for i := int64(0); i < count; i++ {
		n := fmt.Sprintf("%s-%d", name, i)
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		// The labels a kubelet would set, plus GPU Feature Discovery's count.
		l[corev1.LabelHostname] = n
		l[corev1.LabelOSStable] = "linux"
		l[corev1.LabelArchStable] = arch
		if _, set := l["nvidia.com/gpu.count"]; gpus > 0 && !set {
			l["nvidia.com/gpu.count"] = strconv.FormatInt(gpus, 10)
		}
		specs = append(specs, nodeSpec{
			Name: n, Arch: arch, CPU: cpu, Memory: mem, EphemeralStorage: eph,
			Pods: pods, GPUs: gpus, Labels: l, Taints: taints,
		})
	}
	return specs, nil
}

// intField reads an optional integer >= min.
func intField(m map[string]any, path, key string, def, min int64) (int64, error) {
	v, present := m[key]
	if !present {
		return def, nil
	}
	f, ok := v.(float64) // YAML numbers decode as float64
	if !ok || f != math.Trunc(f) || f < float64(min) || f > 1e6 {
		if min == 0 {
			return 0, errAt(path+"."+key, "must be a non-negative integer")
		}
		return 0, errAt(path+"."+key, "must be an integer >= %d", min)
	}
	return int64(f), nil
}

// quantityField reads a Kubernetes quantity ("192", 64, "2Ti", "500m").
// An empty default makes the field required.
func quantityField(m map[string]any, path, key, def string) (resource.Quantity, error) {
	v, present := m[key]
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case float64:
		s = strconv.FormatFloat(t, 'f', -1, 64)
	default:
		if present {
			return resource.Quantity{}, errAt(path+"."+key, "must be a quantity such as 64, 500m or 256Gi")
		}
		if def == "" {
			return resource.Quantity{}, errAt(path+"."+key, "required, a quantity such as 64 or 256Gi")
		}
		s = def
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return resource.Quantity{}, errAt(path+"."+key, "%q is not a positive quantity such as 64, 500m or 256Gi", s)
	}
	return q, nil
}

func labelsField(m map[string]any, path string) (map[string]string, error) {
	out := map[string]string{}
	v, present := m["labels"]
	if !present || v == nil {
		return out, nil
	}
	lm, ok := v.(map[string]any)
	if !ok {
		return nil, errAt(path+".labels", "must be a mapping of label keys to string values")
	}
	for k, raw := range lm {
		p := fmt.Sprintf("%s.labels[%q]", path, k)
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, errAt(p, "invalid label key: %s", strings.Join(errs, "; "))
		}
		var val string
		switch t := raw.(type) {
		case string:
			val = t
		case nil:
			val = ""
		case float64:
			val = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			val = strconv.FormatBool(t)
		default:
			return nil, errAt(p, "must be a string")
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			return nil, errAt(p, "invalid label value %q: %s", val, strings.Join(errs, "; "))
		}
		out[k] = val
	}
	return out, nil
}

// taintsField reads taints written as kubectl does: key[=value]:Effect.
func taintsField(m map[string]any, path string) ([]corev1.Taint, error) {
	v, present := m["taints"]
	if !present || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, errAt(path+".taints", "must be a list of key[=value]:Effect strings")
	}
	var out []corev1.Taint
	for i, raw := range list {
		p := fmt.Sprintf("%s.taints[%d]", path, i)
		s, ok := raw.(string)
		if !ok {
			return nil, errAt(p, "must be a string key[=value]:Effect")
		}
		t, err := parseTaint(s)
		if err != nil {
			return nil, errAt(p, "%v", err)
		}
		out = append(out, t)
	}
	return out, nil
}

func parseTaint(s string) (corev1.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Taint{}, fmt.Errorf("%q: missing :Effect (NoSchedule, PreferNoSchedule or NoExecute)", s)
	}
	key, value, _ := strings.Cut(kv, "=")
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return corev1.Taint{}, fmt.Errorf("%q: invalid key: %s", s, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return corev1.Taint{}, fmt.Errorf("%q: invalid value: %s", s, strings.Join(errs, "; "))
	}
	switch e := corev1.TaintEffect(effect); e {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return corev1.Taint{Key: key, Value: value, Effect: e}, nil
	default:
		return corev1.Taint{}, fmt.Errorf("%q: effect must be NoSchedule, PreferNoSchedule or NoExecute", s)
	}
}
