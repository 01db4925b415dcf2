package deploy

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizations are the directories that must render, by short name.
var kustomizations = map[string]string{
	"base": "k8s/base",
	"dev":  "k8s/overlays/dev",
	"prod": "k8s/overlays/prod",
}

// strictCodec decodes JSON into the Go type its apiVersion and kind name,
// refusing unknown and duplicate fields; wrong types fail in any mode. The
// scheme has client-go's built-in kinds and the Prometheus operator's, so
// a kind outside both fails too.
var strictCodec = func() *kjson.Serializer {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(monitoringv1.AddToScheme(s))
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Strict: true})
}()

// objects is one rendered kustomization, decoded.
type objects struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	namespaces      []*corev1.Namespace
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	ingresses       []*networkingv1.Ingress
	networkPolicies []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
	prometheusRules []*monitoringv1.PrometheusRule
}

// render builds the kustomization in dir of fSys with the kustomize API
// (no plugins, no remote bases: nothing is fetched) and returns every
// object as JSON.
func render(fSys filesys.FileSystem, dir string) ([][]byte, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fSys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out [][]byte
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		out = append(out, b)
	}
	return out, nil
}

// decode decodes every rendered object strictly into its Go type.
func decode(docs [][]byte) (*objects, error) {
	o := &objects{}
	for _, b := range docs {
		obj, gvk, err := strictCodec.Decode(b, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describe(b), err)
		}
		switch v := obj.(type) {
		case *appsv1.Deployment:
			o.deployments = append(o.deployments, v)
		case *corev1.Service:
			o.services = append(o.services, v)
		case *corev1.ConfigMap:
			o.configMaps = append(o.configMaps, v)
		case *corev1.Secret:
			o.secrets = append(o.secrets, v)
		case *corev1.Namespace:
			o.namespaces = append(o.namespaces, v)
		case *policyv1.PodDisruptionBudget:
			o.pdbs = append(o.pdbs, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			o.hpas = append(o.hpas, v)
		case *networkingv1.Ingress:
			o.ingresses = append(o.ingresses, v)
		case *networkingv1.NetworkPolicy:
			o.networkPolicies = append(o.networkPolicies, v)
		case *monitoringv1.ServiceMonitor:
			o.serviceMonitors = append(o.serviceMonitors, v)
		case *monitoringv1.PrometheusRule:
			o.prometheusRules = append(o.prometheusRules, v)
		default:
			return nil, fmt.Errorf("%s: a kind these tests do not check: add it to objects", gvk)
		}
	}
	return o, nil
}

// describe names a rendered object by kind and name, for errors.
func describe(b []byte) string {
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.Kind == "" {
		if len(b) > 120 {
			b = append(b[:120:120], "…"...)
		}
		return string(b)
	}
	return head.Kind + " " + head.Metadata.Name
}

var renderCache struct {
	sync.Mutex
	docs map[string][][]byte
	errs map[string]error
}

// rendered returns the rendered documents of a kustomization by short
// name, building each once per test binary.
func rendered(t *testing.T, name string) [][]byte {
	t.Helper()
	renderCache.Lock()
	defer renderCache.Unlock()
	if renderCache.docs == nil {
		renderCache.docs = map[string][][]byte{}
		renderCache.errs = map[string]error{}
	}
	docs, ok := renderCache.docs[name]
	err := renderCache.errs[name]
	if !ok && err == nil {
		docs, err = render(filesys.MakeFsOnDisk(), filepath.FromSlash(kustomizations[name]))
		renderCache.docs[name], renderCache.errs[name] = docs, err
	}
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// decoded renders and decodes a kustomization; every call returns fresh
// objects, which a test may change.
func decoded(t *testing.T, name string) *objects {
	t.Helper()
	o, err := decode(rendered(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return o
}

func TestKustomizationsRenderAndDecodeStrictly(t *testing.T) {
	for name := range kustomizations {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := decoded(t, name)
			if len(o.deployments) != 5 {
				t.Errorf("%d Deployments, want 5 (edge, taskapi, worker, sysmon, dashboard)", len(o.deployments))
			}
		})
	}
}

// TestStrictDecodingRejects shows that the render-and-decode path fails on
// a misspelt field and on a wrong type, not only on broken YAML.
func TestStrictDecodingRejects(t *testing.T) {
	const good = `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: x
          image: x
          readinessProbe: {httpGet: {path: /readyz, port: 9090}}
`
	for _, tc := range []struct{ name, old, new, want string }{
		{"valid", "", "", ""},
		{"unknown field", "readinessProbe:", "readinesProbe:", `unknown field "spec.template.spec.containers[0].readinesProbe"`},
		{"wrong type", "replicas: 1", `replicas: "one"`, "replicas"},
		{"unknown kind", "kind: Deployment", "kind: Deploymint", "no kind"},
		{"duplicate field", "  replicas: 1\n", "  replicas: 1\n  replicas: 2\n", "replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := good
			if tc.old != "" {
				doc = replaceOnce(t, good, tc.old, tc.new)
			}
			fSys := filesys.MakeFsInMemory()
			for path, content := range map[string]string{
				"/k/kustomization.yaml": "resources: [d.yaml]\n",
				"/k/d.yaml":             doc,
			} {
				if err := fSys.WriteFile(path, []byte(content)); err != nil {
					t.Fatal(err)
				}
			}
			docs, err := render(fSys, "/k")
			if err == nil {
				_, err = decode(docs)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid Deployment refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tc.want)
			case tc.want != "" && !contains(err.Error(), tc.want):
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}
