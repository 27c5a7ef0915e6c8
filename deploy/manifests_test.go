package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const kubeDir = "kubernetes"

// kustomization is the part of kustomize's Kustomization and Component
// that these manifests use: a field it does not know is an error.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources,omitempty"`
	Components []string `json:"components,omitempty"`
	Patches    []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
}

// newObject is an empty value of the Go type of a manifest's apiVersion
// and kind, or nil for one these manifests should not hold.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization", "kustomize.config.k8s.io/v1alpha1 Component":
		return &kustomization{}
	}
	return nil
}

// unmarshalStrict decodes YAML or JSON into obj as the API server's
// strict field validation does: field names match case and all, and an
// unknown or duplicate field is an error. (encoding/json, and so
// sigs.k8s.io/yaml's UnmarshalStrict, would take readOnlyRootFileSystem
// for readOnlyRootFilesystem.)
func unmarshalStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return errors.Join(strict...)
	}
	return nil
}

// decodeStrict decodes one YAML document into the Kubernetes API type its
// apiVersion and kind name, strictly.
func decodeStrict(doc []byte) (any, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, err
	}
	obj := newObject(head.APIVersion, head.Kind)
	if obj == nil {
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind these manifests hold", head.APIVersion, head.Kind)
	}
	if err := unmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
	}
	return obj, nil
}

// documents splits a YAML stream at its "---" lines.
func documents(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// manifests is every YAML file under deploy/kubernetes.
func manifests(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(kubeDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", kubeDir)
	}
	return files
}

func readObject[T any](t *testing.T, file string) T {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs := documents(b)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", file, len(docs))
	}
	obj, err := decodeStrict(docs[0])
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	o, ok := obj.(T)
	if !ok {
		t.Fatalf("%s: a %T, want a %T", file, obj, *new(T))
	}
	return o
}

// TestManifestsDecodeStrictly checks every manifest against the
// Kubernetes API types, so that a misspelt or misplaced field fails here
// rather than being dropped by a cluster that is not strict.
func TestManifestsDecodeStrictly(t *testing.T) {
	for _, f := range manifests(t) {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs := documents(b)
			if len(docs) == 0 {
				t.Fatal("no document")
			}
			for i, d := range docs {
				if _, err := decodeStrict(d); err != nil {
					t.Errorf("document %d: %v", i+1, err)
				}
			}
		})
	}
}

// TestManifestTypoFails makes sure the strict decoding would catch the
// mistakes it is there for: each row spoils deployment.yaml once.
func TestManifestTypoFails(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(kubeDir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeStrict(good); err != nil {
		t.Fatalf("deployment.yaml itself: %v", err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"misspelt field", "readinessProbe:", "readynessProbe:"},
		{"misspelt nested field", "readOnlyRootFilesystem:", "readOnlyRootFileSystem:"},
		{"field at the wrong level", "      automountServiceAccountToken: false", "      template:\n        automountServiceAccountToken: false"},
		{"wrong type", "replicas: 3", "replicas: three"},
		{"duplicate field", "  replicas: 3\n", "  replicas: 3\n  replicas: 2\n"},
		{"unknown kind", "kind: Deployment", "kind: Deploymnet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tc.from, tc.to, 1)
			if bad == string(good) {
				t.Fatalf("deployment.yaml has no %q to spoil", tc.from)
			}
			if _, err := decodeStrict([]byte(bad)); err == nil {
				t.Errorf("%q for %q decoded without an error", tc.to, tc.from)
			} else {
				t.Logf("refused, as it should be: %v", err)
			}
		})
	}
}

// TestKustomizationsNameEveryManifest: a manifest that no kustomization
// names is never applied, and a name without a file breaks kubectl -k.
func TestKustomizationsNameEveryManifest(t *testing.T) {
	named := map[string]bool{}
	for _, f := range manifests(t) {
		if filepath.Base(f) != "kustomization.yaml" {
			continue
		}
		named[f] = true
		k := readObject[*kustomization](t, f)
		dir := filepath.Dir(f)
		var paths []string
		paths = append(paths, k.Resources...)
		for _, p := range k.Patches {
			paths = append(paths, p.Path)
		}
		for _, c := range k.Components {
			paths = append(paths, filepath.Join(c, "kustomization.yaml"))
		}
		for _, p := range paths {
			p = filepath.Join(dir, p)
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s names %s: %v", f, p, err)
			}
			named[p] = true
		}
	}
	// The TLS component is named only in a comment, for it is optional.
	named[filepath.Join(kubeDir, "tls", "kustomization.yaml")] = true
	for _, f := range manifests(t) {
		if !named[f] {
			t.Errorf("%s: no kustomization names it", f)
		}
	}
}

// The manifests as a cluster gets them: the base, and the base with the
// TLS component's resources added and its patches applied as kustomize
// applies them.
type rendered struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	policies   []*networkingv1.NetworkPolicy
}

func renderBase(t *testing.T) rendered {
	t.Helper()
	return rendered{
		deployment: readObject[*appsv1.Deployment](t, filepath.Join(kubeDir, "deployment.yaml")),
		service:    readObject[*corev1.Service](t, filepath.Join(kubeDir, "service.yaml")),
		pdb:        readObject[*policyv1.PodDisruptionBudget](t, filepath.Join(kubeDir, "pdb.yaml")),
		policies:   []*networkingv1.NetworkPolicy{readObject[*networkingv1.NetworkPolicy](t, filepath.Join(kubeDir, "networkpolicy.yaml"))},
	}
}

func renderTLS(t *testing.T) rendered {
	t.Helper()
	r := renderBase(t)
	k := readObject[*kustomization](t, filepath.Join(kubeDir, "tls", "kustomization.yaml"))
	if k.Kind != "Component" {
		t.Fatalf("tls/kustomization.yaml is a %s, want a Component", k.Kind)
	}
	for _, res := range k.Resources {
		f := filepath.Join(kubeDir, "tls", res)
		p, ok := must(decodeStrict(must(os.ReadFile(f)))).(*networkingv1.NetworkPolicy)
		if !ok {
			t.Fatalf("%s: the TLS component adds a NetworkPolicy alone", f)
		}
		r.policies = append(r.policies, p)
	}
	for _, p := range k.Patches {
		f := filepath.Join(kubeDir, "tls", p.Path)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		patch, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch obj := must(decodeStrict(b)).(type) {
		case *appsv1.Deployment:
			r.deployment = patched(t, f, r.deployment, patch)
		case *corev1.Service:
			r.service = patched(t, f, r.service, patch)
		default:
			t.Fatalf("%s: a patch for a %T", f, obj)
		}
	}
	return r
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// patched is obj with a strategic merge patch applied, decoded strictly.
func patched[T any](t *testing.T, file string, obj T, patch []byte) T {
	t.Helper()
	orig, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out, err := strategicpatch.StrategicMergePatch(orig, patch, obj)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var res T
	if err := unmarshalStrict(out, &res); err != nil {
		t.Fatalf("%s applied: %v", file, err)
	}
	return res
}

// flagValue is the value of flag in args (--flag value or --flag=value).
func flagValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

func portNamed(c corev1.Container, name string) (corev1.ContainerPort, bool) {
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
	if i < 0 {
		return corev1.ContainerPort{}, false
	}
	return c.Ports[i], true
}

// TestDeployment checks what the issue asks of the Deployment, and that
// its parts agree with each other: probes on the port --admin listens on,
// a grace period that outlasts the preStop sleep and the shutdown.
func TestDeployment(t *testing.T) {
	for _, v := range []struct {
		name   string
		render func(*testing.T) rendered
	}{{"base", renderBase}, {"tls", renderTLS}} {
		t.Run(v.name, func(t *testing.T) {
			r := v.render(t)
			checkDeployment(t, r.deployment)
			checkService(t, r.service, r.deployment)
			if r.pdb.Spec.MaxUnavailable == nil || r.pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("PodDisruptionBudget maxUnavailable = %v, want 1", r.pdb.Spec.MaxUnavailable)
			}
			if !equalLabels(r.pdb.Spec.Selector.MatchLabels, r.deployment.Spec.Template.Labels) {
				t.Errorf("PodDisruptionBudget selects %v; the pods are labelled %v", r.pdb.Spec.Selector.MatchLabels, r.deployment.Spec.Template.Labels)
			}
			checkNetworkPolicies(t, r.policies, r.deployment)
		})
	}
}

// checkNetworkPolicies: the policies select the Deployment's pods, and
// admit each of its container ports, by a name or number the container
// has, with its protocol, and no other: the data ports from pods in the
// cluster (the clients --source-rate was chosen for, through the
// ClusterIP Service), the admin port from a chosen namespace or pods
// alone (it answers anyone it is reached by, with no password).
func checkNetworkPolicies(t *testing.T, policies []*networkingv1.NetworkPolicy, d *appsv1.Deployment) {
	t.Helper()
	for _, p := range networkPolicyProblems(policies, d) {
		t.Error(p)
	}
}

// networkPolicyProblems is what checkNetworkPolicies finds wrong.
func networkPolicyProblems(policies []*networkingv1.NetworkPolicy, d *appsv1.Deployment) []string {
	var problems []string
	c := d.Spec.Template.Spec.Containers[0]
	admitted := map[string]bool{} // container port names
	for _, np := range policies {
		sel := np.Spec.PodSelector
		if len(sel.MatchExpressions) > 0 || !equalLabels(sel.MatchLabels, d.Spec.Template.Labels) {
			problems = append(problems, fmt.Sprintf("NetworkPolicy %s selects %v; the pods are labelled %v", np.Name, sel.MatchLabels, d.Spec.Template.Labels))
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			problems = append(problems, fmt.Sprintf("NetworkPolicy %s: policyTypes %v, want Ingress", np.Name, np.Spec.PolicyTypes))
		}
		for i, rule := range np.Spec.Ingress {
			if len(rule.Ports) == 0 {
				problems = append(problems, fmt.Sprintf("NetworkPolicy %s, ingress rule %d: no ports, so every port, the admin port too", np.Name, i+1))
			}
			for _, p := range rule.Ports {
				cp, ok := containerPort(c, p)
				if !ok {
					proto := "TCP"
					if p.Protocol != nil {
						proto = string(*p.Protocol)
					}
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s admits port %v/%s, which the container does not have", np.Name, p.Port, proto))
					continue
				}
				admitted[cp.Name] = true
				switch {
				case len(rule.From) == 0:
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s admits %s from anyone: the Deployment serves pods in the cluster", np.Name, cp.Name))
				case slices.ContainsFunc(rule.From, func(p networkingv1.NetworkPolicyPeer) bool { return p.IPBlock != nil }):
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s admits %s from addresses: the Deployment serves pods in the cluster", np.Name, cp.Name))
				case cp.Name == "admin" && !all(rule.From, chosen):
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s admits the admin port from %+v: want a namespace or pods chosen by their labels alone", np.Name, rule.From))
				}
			}
		}
	}
	for _, cp := range c.Ports {
		if !admitted[cp.Name] {
			problems = append(problems, fmt.Sprintf("container port %s (%d/%s): no NetworkPolicy admits it", cp.Name, cp.ContainerPort, cp.Protocol))
		}
	}
	return problems
}

func all[T any](s []T, f func(T) bool) bool {
	return !slices.ContainsFunc(s, func(v T) bool { return !f(v) })
}

// TestNetworkPolicyFaults makes sure checkNetworkPolicies would catch
// what it is there for: each row spoils the shipped policy once, and the
// problem found must be the one the row is about (want), not only some
// other that the spoiling brings along: a rule with no ports, which
// admits the admin port from wherever it admits, was caught only because
// the rule it emptied had admitted the data ports.
func TestNetworkPolicyFaults(t *testing.T) {
	r := renderBase(t)
	if p := networkPolicyProblems(r.policies, r.deployment); len(p) > 0 {
		t.Fatalf("the shipped policy itself: %q", p)
	}
	for _, tc := range []struct {
		name  string
		spoil func(*networkingv1.NetworkPolicySpec)
		want  string // in one of the problems found
	}{
		{"admin port from every namespace", func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[1].From[0].NamespaceSelector = &metav1.LabelSelector{}
		}, "admits the admin port from"},
		// Every namespace has this label (Kubernetes sets it since 1.22):
		// a selector by expressions alone may choose none of them.
		{"admin port from every namespace, by an expression", func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[1].From[0].NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpExists},
			}}
		}, "admits the admin port from"},
		{"admin port from every namespace but one", func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[1].From[0].NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}},
			}}
		}, "admits the admin port from"},
		// An In with no values is one kubectl refuses: not a choice.
		{"admin port from a namespace In no names", func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[1].From[0].NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn},
			}}
		}, "admits the admin port from"},
		{"admin port from anyone", func(s *networkingv1.NetworkPolicySpec) { s.Ingress[1].From = nil }, "admits admin from anyone"},
		{"a rule with no ports", func(s *networkingv1.NetworkPolicySpec) { s.Ingress[0].Ports = nil }, "ingress rule 1: no ports"},
		{"a rule with no ports, the others kept", func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress = append(s.Ingress, networkingv1.NetworkPolicyIngressRule{From: s.Ingress[0].From})
		}, "ingress rule 3: no ports"},
		{"UDP from the world", func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[0].From = append(s.Ingress[0].From, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}})
		}, "admits shout-udp from addresses"},
		{"a port the container has not", func(s *networkingv1.NetworkPolicySpec) {
			p := intstr.FromString("shout-tls")
			s.Ingress[0].Ports = append(s.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: &p})
		}, "admits port shout-tls/TCP, which the container does not have"},
		{"the wrong protocol", func(s *networkingv1.NetworkPolicySpec) {
			tcp := corev1.ProtocolTCP
			s.Ingress[0].Ports[1].Protocol = &tcp
		}, "admits port shout-udp/TCP, which the container does not have"},
		{"the admin port not admitted", func(s *networkingv1.NetworkPolicySpec) { s.Ingress = s.Ingress[:1] }, "container port admin (9090/TCP): no NetworkPolicy admits it"},
		{"other pods", func(s *networkingv1.NetworkPolicySpec) { s.PodSelector.MatchLabels = map[string]string{"app": "other"} }, "selects map[app:other]"},
		{"egress only", func(s *networkingv1.NetworkPolicySpec) {
			s.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		}, "policyTypes [Egress], want Ingress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := renderBase(t).policies[0]
			tc.spoil(&np.Spec)
			p := networkPolicyProblems([]*networkingv1.NetworkPolicy{np}, r.deployment)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("found %q; want a problem saying %q", p, tc.want)
			}
		})
	}
}

// containerPort is the port of c that p names, by name or number, with
// its protocol (TCP unless it says).
func containerPort(c corev1.Container, p networkingv1.NetworkPolicyPort) (corev1.ContainerPort, bool) {
	if p.Port == nil || p.EndPort != nil {
		return corev1.ContainerPort{}, false // every port, or a range
	}
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	i := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool {
		return cp.Protocol == proto && (cp.Name == p.Port.String() || p.Port.IntValue() == int(cp.ContainerPort))
	})
	if i < 0 {
		return corev1.ContainerPort{}, false
	}
	return c.Ports[i], true
}

// chosen reports whether p admits a namespace or pods named by labels,
// not every namespace nor an address block. A selector names them only
// by a label's value (matchLabels, or an expression's In): Exists,
// NotIn and DoesNotExist alone choose whatever lacks a label or has
// another value, and every namespace has kubernetes.io/metadata.name
// (an In with no values is invalid: the API server refuses it).
func chosen(p networkingv1.NetworkPolicyPeer) bool {
	labelled := func(s *metav1.LabelSelector) bool {
		return s != nil && (len(s.MatchLabels) > 0 || slices.ContainsFunc(s.MatchExpressions, func(r metav1.LabelSelectorRequirement) bool {
			return r.Operator == metav1.LabelSelectorOpIn && len(r.Values) > 0
		}))
	}
	return p.IPBlock == nil && (labelled(p.NamespaceSelector) || p.NamespaceSelector == nil && labelled(p.PodSelector))
}

// The image's own command, which runs wherever it is started with no
// arguments (and is published on every interface by a plain podman run
// -p), serves UDP with a --source-rate that answers the longest datagram
// (65,527 bytes) and is no more than 64 KiB a second for each source, so
// that a forged source's victim gets no more than that.
func TestImageCommand(t *testing.T) {
	b, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var cmd []string
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "CMD "); ok {
			if err := json.Unmarshal([]byte(rest), &cmd); err != nil {
				t.Fatalf("CMD %s: %v", rest, err)
			}
		}
	}
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("CMD %q: want shout serve", cmd)
	}
	v, ok := flagValue(cmd, "--source-rate")
	rate, err := strconv.Atoi(v)
	if !ok || err != nil || rate < 65527 || rate > 65536 {
		t.Errorf("CMD %q: --source-rate %q; want from 65527 (the longest datagram) to 65536", cmd, v)
	}
}

func equalLabels(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %v, want 3", d.Spec.Replicas)
	}
	if !equalLabels(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("selector %v does not select the template's labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false: the pod gets a token it does not need")
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks is not false: SHOUT_SERVICE_* variables would reach shout's flags")
	}
	if pod.HostNetwork {
		t.Error("hostNetwork: the shipped manifest must not have it")
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container securityContext %+v: want no privilege escalation, a read-only root, every capability dropped", sc)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %q: want shout serve", c.Args)
	}
	if !slices.Contains(c.Args, ":8080") {
		t.Errorf("args %q: shout does not listen on :8080", c.Args)
	}
	for _, p := range []struct{ name, proto string }{{"shout-tcp", "TCP"}, {"shout-udp", "UDP"}} {
		if cp, ok := portNamed(c, p.name); !ok || cp.ContainerPort != 8080 || string(cp.Protocol) != p.proto {
			t.Errorf("port %s = %+v, want 8080/%s", p.name, cp, p.proto)
		}
	}

	// UDP on every interface of the pod: the budget of each source is
	// given, a choice (the Service reaches known clients alone), not the
	// default that shout warns of beyond loopback.
	if _, ok := flagValue(c.Args, "--source-rate"); !ok {
		t.Errorf("args %q: UDP on :8080 with no --source-rate, the default shout warns of on an address beyond loopback", c.Args)
	}

	// Every connection may hold 64 KiB (one that stops reading, until
	// --write-timeout), and more than the memory limit allows gets the
	// pod killed instead of clients turned away. 64 Mi for the rest.
	maxConns := 10000 // shout serve's default
	if v, ok := flagValue(c.Args, "--max-conns"); ok {
		var err error
		if maxConns, err = strconv.Atoi(v); err != nil || maxConns <= 0 {
			t.Fatalf("--max-conns %q: want a number over 0", v)
		}
	}
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		if need := int64(maxConns)*64<<10 + 64<<20; mem.Value() < need {
			t.Errorf("memory limit %v: --max-conns %d × 64 KiB + 64 Mi needs %d MiB", mem.String(), maxConns, need>>20)
		}
	}

	// The probes ask the admin listener.
	admin, ok := flagValue(c.Args, "--admin")
	if !ok {
		t.Fatalf("args %q: no --admin, which the probes need", c.Args)
	}
	ap, ok := portNamed(c, "admin")
	if !ok || !strings.HasSuffix(admin, fmt.Sprintf(":%d", ap.ContainerPort)) {
		t.Errorf("--admin %s, but the port named admin is %d", admin, ap.ContainerPort)
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an HTTP GET of %s", p.kind, p.path)
			continue
		}
		if g := p.probe.HTTPGet; g.Path != p.path || g.Port.String() != "admin" {
			t.Errorf("%s gets %s on port %s, want %s on admin", p.kind, g.Path, g.Port.String(), p.path)
		}
		// One answer slowed past the timeout (a pod throttled at its CPU
		// limit) must not take it out of the Service, or restart it.
		if p.probe.FailureThreshold < 2 {
			t.Errorf("%s: failureThreshold %d: one slow answer would count as a failed pod; want 2 or more", p.kind, p.probe.FailureThreshold)
		}
	}

	// The grace period must outlast the preStop sleep (the endpoint being
	// withdrawn), then the drain, then what follows it.
	shutdown := 10 * time.Second // shout serve's default
	if v, ok := flagValue(c.Args, "--shutdown-timeout"); ok {
		var err error
		if shutdown, err = time.ParseDuration(v); err != nil || shutdown <= 0 {
			t.Fatalf("--shutdown-timeout %q: want a duration over 0, so that a stop ends", v)
		}
	}
	var preStop time.Duration
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	if preStop == 0 {
		t.Error("no preStop sleep: new clients would be refused while the endpoint is withdrawn")
	}
	grace := 30 * time.Second
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	// 3 s: connections still busy once closed (stopGrace), the admin
	// listener's stop and the last log lines, 1 s each at most.
	if need := preStop + shutdown + 3*time.Second; grace <= need {
		t.Errorf("terminationGracePeriodSeconds %v: want more than preStop %v + --shutdown-timeout %v + 3s", grace, preStop, shutdown)
	}
	if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rollingUpdate %+v: want maxUnavailable 0, so a roll keeps every replica serving", s)
	}
}

func checkService(t *testing.T, s *corev1.Service, d *appsv1.Deployment) {
	t.Helper()
	if !equalLabels(s.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Service selects %v; the pods are labelled %v", s.Spec.Selector, d.Spec.Template.Labels)
	}
	c := d.Spec.Template.Spec.Containers[0]
	got := map[string]bool{}
	for _, p := range s.Spec.Ports {
		cp, ok := portNamed(c, p.TargetPort.String())
		if !ok || cp.Protocol != p.Protocol {
			t.Errorf("Service port %s targets %s/%s, which the container does not have", p.Name, p.TargetPort.String(), p.Protocol)
		}
		got[fmt.Sprintf("%d/%s", p.Port, p.Protocol)] = true
	}
	for _, want := range []string{"8080/TCP", "8080/UDP"} {
		if !got[want] {
			t.Errorf("Service does not expose %s", want)
		}
	}
}

// TestTLSComponent: the TLS variant is the base with a tls:// listener on
// 8443 and the certificate and key from the Secret shout-tls, and
// nothing else changed in shout's arguments.
func TestTLSComponent(t *testing.T) {
	base, tls := renderBase(t), renderTLS(t)
	bc, c := base.deployment.Spec.Template.Spec.Containers[0], tls.deployment.Spec.Template.Spec.Containers[0]
	cert, _ := flagValue(c.Args, "--cert")
	key, _ := flagValue(c.Args, "--key")
	added := []string{"tls://:8443", "--cert", cert, "--key", key}
	rest := slices.DeleteFunc(slices.Clone(c.Args), func(a string) bool { return slices.Contains(added, a) })
	if !slices.Equal(rest, bc.Args) || !slices.Contains(c.Args, "tls://:8443") {
		t.Errorf("TLS args %q: want the base's %q with tls://:8443, --cert and --key", c.Args, bc.Args)
	}
	if p, ok := portNamed(c, "shout-tls"); !ok || p.ContainerPort != 8443 {
		t.Errorf("no container port shout-tls 8443: %+v", c.Ports)
	}
	var mount string
	for _, m := range c.VolumeMounts {
		if m.Name == "tls" && m.ReadOnly {
			mount = m.MountPath
		}
	}
	if mount == "" || filepath.Dir(cert) != mount || filepath.Dir(key) != mount {
		t.Errorf("--cert %s and --key %s: want them in the read-only mount of volume tls, %q", cert, key, mount)
	}
	var secret string
	for _, v := range tls.deployment.Spec.Template.Spec.Volumes {
		if v.Name == "tls" && v.Secret != nil {
			secret = v.Secret.SecretName
			for _, it := range v.Secret.Items {
				t.Errorf("volume tls picks item %s: a kubernetes.io/tls Secret has tls.crt and tls.key", it.Key)
			}
		}
	}
	if secret != "shout-tls" || filepath.Base(cert) != "tls.crt" || filepath.Base(key) != "tls.key" {
		t.Errorf("certificate %s and key %s from Secret %q: want tls.crt and tls.key of shout-tls", cert, key, secret)
	}
	if len(tls.service.Spec.Ports) != len(base.service.Spec.Ports)+1 {
		t.Errorf("TLS Service ports %+v: want the base's and 8443", tls.service.Spec.Ports)
	}
}

// TestKustomize builds the kustomization, and the base with the TLS
// component, with kubectl's own kustomize where kubectl is installed,
// decodes what it makes strictly, and checks it is what the tests above
// checked: the objects of the files, the TLS patches applied alike.
func TestKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("SKIP: no kubectl to build the kustomization with (the strict decoding above still ran)")
	}
	abs, err := filepath.Abs(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	// kustomize takes relative paths only.
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	overlay := fmt.Sprintf("resources:\n  - %s\ncomponents:\n  - %s\n", rel, filepath.Join(rel, "tls"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		name, dir string
		want      rendered
	}{{"base", abs, renderBase(t)}, {"tls", dir, renderTLS(t)}} {
		t.Run(v.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, kubectl, "kustomize", v.dir)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
			}
			var got rendered
			for _, d := range documents(out) {
				obj, err := decodeStrict(d)
				if err != nil {
					t.Fatalf("kubectl kustomize made %v\n%s", err, d)
				}
				switch o := obj.(type) {
				case *appsv1.Deployment:
					got.deployment = o
				case *corev1.Service:
					got.service = o
				case *policyv1.PodDisruptionBudget:
					got.pdb = o
				case *networkingv1.NetworkPolicy:
					got.policies = append(got.policies, o)
				default:
					t.Errorf("kubectl kustomize made a %T", o)
				}
			}
			for _, c := range []struct {
				kind      string
				got, want any
			}{{"Deployment", got.deployment, v.want.deployment}, {"Service", got.service, v.want.service}, {"PodDisruptionBudget", got.pdb, v.want.pdb}, {"NetworkPolicies", got.policies, v.want.policies}} {
				if !reflect.DeepEqual(c.got, c.want) {
					g, _ := yaml.Marshal(c.got)
					w, _ := yaml.Marshal(c.want)
					t.Errorf("%s from kubectl kustomize:\n%s\nwant, as the files and the patches make it:\n%s", c.kind, g, w)
				}
			}
		})
	}
}
