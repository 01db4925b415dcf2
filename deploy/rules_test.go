package deploy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The services every kustomization deploys, and the one that must run
// alone: two sysmons would both publish system_status.
var (
	services     = []string{"edge", "taskapi", "worker", "sysmon", "dashboard"}
	singleton    = "sysmon"
	jwtSecret    = "eventedge-jwt"
	edgeIngressT = 3600 // seconds: WebSocket-friendly proxy timeouts
)

// problems collects rule violations of one kustomization.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// check applies our rules to the objects of the kustomization named
// overlay ("base", "dev" or "prod").
func check(overlay string, o *objects) problems {
	var p problems
	checkWorkloads(&p, o)
	checkSelectors(&p, o)
	checkEdge(&p, o)
	checkSingleton(&p, o)
	checkSecrets(&p, overlay, o)
	checkOverlay(&p, overlay, o)
	return p
}

func TestRules(t *testing.T) {
	for name := range kustomizations {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, s := range check(name, decoded(t, name)) {
				t.Error(s)
			}
		})
	}
}

// checkWorkloads: every service has a Deployment; every container has
// probes, requests and limits, and runs locked down.
func checkWorkloads(p *problems, o *objects) {
	for _, s := range services {
		if deployment(o, s) == nil {
			p.add("no Deployment %s", s)
		}
	}
	for _, d := range o.deployments {
		spec := d.Spec.Template.Spec
		if len(spec.InitContainers) > 0 || len(spec.EphemeralContainers) > 0 {
			p.add("Deployment %s: init or ephemeral containers: add them to these rules", d.Name)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			p.add("Deployment %s: automountServiceAccountToken not false (no service talks to the API server)", d.Name)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			p.add("Deployment %s: uses a host namespace", d.Name)
		}
		psc := spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		for _, c := range spec.Containers {
			where := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
			if c.ReadinessProbe == nil {
				p.add("%s: no readinessProbe", where)
			}
			if c.LivenessProbe == nil {
				p.add("%s: no livenessProbe", where)
			}
			for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Port.Type == intstr.String && !hasPort(c, pr.HTTPGet.Port.StrVal) {
					p.add("%s: a probe uses port %q, which the container does not name", where, pr.HTTPGet.Port.StrVal)
				}
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[r]
				lim, hasLim := c.Resources.Limits[r]
				switch {
				case !hasReq || req.IsZero():
					p.add("%s: no %s request", where, r)
				case !hasLim || lim.IsZero():
					p.add("%s: no %s limit", where, r)
				case req.Cmp(lim) > 0:
					p.add("%s: %s request %s above its limit %s", where, r, req.String(), lim.String())
				}
			}
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
				p.add("%s: runAsNonRoot not true", where)
			}
			uid := sc.RunAsUser
			if uid == nil {
				uid = psc.RunAsUser
			}
			if uid == nil || *uid == 0 {
				p.add("%s: no non-zero runAsUser (the images' user is 65532)", where)
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				p.add("%s: readOnlyRootFilesystem not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				p.add("%s: allowPrivilegeEscalation not false", where)
			}
			if isTrue(sc.Privileged) {
				p.add("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				p.add("%s: capabilities must drop ALL and add none", where)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				p.add("%s: seccompProfile not RuntimeDefault", where)
			}
			for _, e := range c.Env {
				if strings.Contains(e.Name, "SECRET") && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
					p.add("%s: %s does not come from a Secret (secretKeyRef)", where, e.Name)
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					ref := e.ValueFrom.ConfigMapKeyRef
					if cm := configMap(o, d.Namespace, ref.Name); cm == nil {
						p.add("%s: %s from ConfigMap %s, which is not deployed", where, e.Name, ref.Name)
					} else if _, ok := cm.Data[ref.Key]; !ok {
						p.add("%s: %s from ConfigMap %s key %s, which it does not have", where, e.Name, ref.Name, ref.Key)
					}
				}
			}
		}
	}
}

// checkSelectors: PDBs, HPAs, Services, Ingresses, NetworkPolicies and
// ServiceMonitors point at things that exist.
func checkSelectors(p *problems, o *objects) {
	for _, pdb := range o.pdbs {
		if ds := selected(p, o, "PodDisruptionBudget "+pdb.Name, pdb.Namespace, pdb.Spec.Selector); len(ds) == 0 {
			p.add("PodDisruptionBudget %s selects the pods of no Deployment", pdb.Name)
		}
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			p.add("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", pdb.Name)
		}
	}
	for _, h := range o.hpas {
		ref := h.Spec.ScaleTargetRef
		d := deployment(o, ref.Name)
		switch {
		case ref.Kind != "Deployment" || ref.APIVersion != "apps/v1":
			p.add("HorizontalPodAutoscaler %s targets a %s %s, want an apps/v1 Deployment", h.Name, ref.APIVersion, ref.Kind)
		case d == nil || d.Namespace != h.Namespace:
			p.add("HorizontalPodAutoscaler %s targets Deployment %s, which is not deployed", h.Name, ref.Name)
		case d.Spec.Replicas != nil:
			p.add("Deployment %s sets replicas though HorizontalPodAutoscaler %s scales it: every apply would reset the count", d.Name, h.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			p.add("HorizontalPodAutoscaler %s: want 1 ≤ minReplicas ≤ maxReplicas", h.Name)
		}
		if len(h.Spec.Metrics) == 0 {
			p.add("HorizontalPodAutoscaler %s: no metrics", h.Name)
		}
	}
	for _, s := range o.services {
		where := "Service " + s.Name
		if len(s.Spec.Selector) == 0 {
			p.add("%s: no selector", where)
			continue
		}
		ds := selected(p, o, where, s.Namespace, metav1.SetAsLabelSelector(s.Spec.Selector))
		if len(ds) == 0 {
			p.add("%s selects the pods of no Deployment", where)
		}
		for _, port := range s.Spec.Ports {
			if port.TargetPort.Type != intstr.String {
				p.add("%s port %s: targetPort %s is not a container port name", where, port.Name, port.TargetPort.String())
				continue
			}
			for _, d := range ds {
				if !podHasPort(d, port.TargetPort.StrVal) {
					p.add("%s port %s: the pods of Deployment %s have no port named %q", where, port.Name, d.Name, port.TargetPort.StrVal)
				}
			}
		}
	}
	for _, ing := range o.ingresses {
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, path := range r.HTTP.Paths {
				b := path.Backend.Service
				if b == nil {
					p.add("Ingress %s: a path without a Service backend", ing.Name)
					continue
				}
				s := service(o, ing.Namespace, b.Name)
				if s == nil {
					p.add("Ingress %s: backend Service %s is not deployed", ing.Name, b.Name)
					continue
				}
				if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == b.Port.Name && b.Port.Name != "" }) {
					p.add("Ingress %s: backend Service %s has no port named %q", ing.Name, b.Name, b.Port.Name)
				}
			}
		}
	}
	covered := map[string]bool{}
	for _, np := range o.networkPolicies {
		where := "NetworkPolicy " + np.Name
		ds := selected(p, o, where, np.Namespace, &np.Spec.PodSelector)
		if len(ds) == 0 {
			p.add("%s selects the pods of no Deployment", where)
		}
		for _, d := range ds {
			covered[d.Name] = true
			for _, rule := range np.Spec.Ingress {
				for _, port := range rule.Ports {
					if port.Port != nil && port.Port.Type == intstr.String && !podHasPort(d, port.Port.StrVal) {
						p.add("%s: the pods of Deployment %s have no port named %q", where, d.Name, port.Port.StrVal)
					}
				}
			}
		}
	}
	for _, d := range o.deployments {
		if !covered[d.Name] {
			p.add("Deployment %s: no NetworkPolicy selects its pods", d.Name)
		}
	}
	for _, s := range o.services {
		if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == "admin" }) {
			p.add("Service %s: no port named admin (/metrics, /healthz, /readyz)", s.Name)
			continue
		}
		found := false
		for _, sm := range o.serviceMonitors {
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			if err != nil {
				p.add("ServiceMonitor %s: %v", sm.Name, err)
				continue
			}
			if sm.Namespace == s.Namespace && sel.Matches(labels.Set(s.Labels)) &&
				slices.ContainsFunc(sm.Spec.Endpoints, func(e monitoringv1.Endpoint) bool { return e.Port == "admin" }) {
				found = true
			}
		}
		if !found {
			p.add("Service %s: no ServiceMonitor scrapes its admin port", s.Name)
		}
	}
}

// checkEdge: the edge's grace period covers preStop and the whole drain,
// which is set explicitly; its Ingress keeps WebSockets open.
func checkEdge(p *problems, o *objects) {
	d := deployment(o, "edge")
	if d == nil {
		return
	}
	c := container(d, "edge")
	if c == nil {
		p.add("Deployment edge: no container edge")
		return
	}
	checkMemLimit(p, c)
	drain, ok := envDuration(p, c, "EDGE_DRAIN_DURATION")
	if !ok {
		p.add("Deployment edge: EDGE_DRAIN_DURATION not set explicitly (the grace period is computed from it)")
		return
	}
	shutdown, ok := envDuration(p, c, "EDGE_SHUTDOWN_TIMEOUT")
	if !ok {
		shutdown = 30 * time.Second // the edge's default
	}
	if shutdown < drain+10*time.Second { // what the edge does itself
		shutdown = drain + 10*time.Second
	}
	var preStop time.Duration
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		p.add("Deployment edge: no preStop sleep (the endpoints and the ingress must drop the pod before the listener closes)")
	} else {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := 30 * time.Second
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= preStop+shutdown {
		p.add("Deployment edge: terminationGracePeriodSeconds %s does not exceed preStop %s + shutdown %s (drain %s): the kubelet would kill the node mid-drain",
			grace, preStop, shutdown, drain)
	}
	keys := map[string]bool{}
	for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
		keys[tsc.TopologyKey] = true
	}
	for _, k := range []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"} {
		if !keys[k] {
			p.add("Deployment edge: no topologySpreadConstraint on %s", k)
		}
	}
	for _, h := range o.hpas {
		if h.Spec.ScaleTargetRef.Name != "edge" {
			continue
		}
		var cpu, conns bool
		for _, m := range h.Spec.Metrics {
			cpu = cpu || (m.Resource != nil && m.Resource.Name == corev1.ResourceCPU)
			conns = conns || (m.Pods != nil && m.Pods.Metric.Name == "eventedge_edge_connections")
		}
		if !cpu || !conns {
			p.add("HorizontalPodAutoscaler %s: want CPU and the Pods metric eventedge_edge_connections", h.Name)
		}
	}
	for _, ing := range o.ingresses {
		if !ingressRoutesTo(ing, "edge") {
			continue
		}
		for _, a := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
			v, err := strconv.Atoi(ing.Annotations["nginx.ingress.kubernetes.io/"+a])
			if err != nil || v < edgeIngressT {
				p.add("Ingress %s: nginx.ingress.kubernetes.io/%s %q, want at least %d for WebSockets", ing.Name, a, ing.Annotations["nginx.ingress.kubernetes.io/"+a], edgeIngressT)
			}
		}
	}
}

// checkSingleton: sysmon runs as exactly one pod, never two, even during a
// rollout.
func checkSingleton(p *problems, o *objects) {
	d := deployment(o, singleton)
	if d == nil {
		return
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		p.add("Deployment %s: replicas must be exactly 1 (two would both publish system_status)", singleton)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		p.add("Deployment %s: strategy must be Recreate (a rolling update runs two for a while)", singleton)
	}
	for _, h := range o.hpas {
		if h.Spec.ScaleTargetRef.Name == singleton {
			p.add("HorizontalPodAutoscaler %s scales %s, which must run alone", h.Name, singleton)
		}
	}
	// sysmon reads the URL as given and decodes /varz's JSON.
	if c := container(d, singleton); c != nil {
		if u := envValue(c, "SYSMON_NATS_MONITOR_URL"); u != "" && !strings.HasSuffix(u, "/varz") {
			p.add("Deployment %s: SYSMON_NATS_MONITOR_URL %q must be the monitoring endpoint's /varz", singleton, u)
		}
	}
}

// checkSecrets: no Secret value in base or prod; the JWT key comes from
// the Secret eventedge-jwt (dev: generated, so its name has a hash).
func checkSecrets(p *problems, overlay string, o *objects) {
	if overlay != "dev" {
		for _, s := range o.secrets {
			p.add("Secret %s: %s ships no secret value (dev generates one; prod expects an existing Secret)", s.Name, overlay)
		}
	}
	for _, d := range o.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if overlay != "dev" {
					if ref.Name != jwtSecret {
						p.add("Deployment %s: %s from Secret %s, want %s", d.Name, e.Name, ref.Name, jwtSecret)
					}
					continue
				}
				s := secret(o, d.Namespace, ref.Name)
				if s == nil {
					p.add("Deployment %s: %s from Secret %s, which dev does not generate", d.Name, e.Name, ref.Name)
				} else if _, ok := s.Data[ref.Key]; !ok {
					p.add("Deployment %s: %s from Secret %s key %s, which it does not have", d.Name, e.Name, ref.Name, ref.Key)
				}
			}
		}
	}
}

// checkOverlay: what differs between dev and prod.
func checkOverlay(p *problems, overlay string, o *objects) {
	for _, d := range o.deployments {
		dev := envValue(container(d, "dashboard"), "DASHBOARD_DEV")
		if d.Name == "dashboard" && overlay != "dev" && dev != "false" {
			p.add("Deployment dashboard: DASHBOARD_DEV %q in %s, want \"false\": the development login mints tokens for anyone", dev, overlay)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			switch tag := imageTag(c.Image); {
			case overlay == "prod" && (tag == "" || tag == "latest"):
				p.add("Deployment %s: image %q is not pinned to a release", d.Name, c.Image)
			case overlay == "dev" && tag == "":
				p.add("Deployment %s: image %q has no tag", d.Name, c.Image)
			}
		}
		if overlay == "dev" && (d.Spec.Replicas == nil || *d.Spec.Replicas != 1) {
			p.add("Deployment %s: dev runs one replica of each service", d.Name)
		}
	}
	if overlay == "dev" && len(o.hpas) > 0 {
		p.add("dev: %d HorizontalPodAutoscalers, want none", len(o.hpas))
	}
	if overlay == "prod" {
		for _, pdb := range o.pdbs {
			if pdb.Spec.MinAvailable == nil {
				p.add("PodDisruptionBudget %s: prod sets minAvailable", pdb.Name)
			}
		}
	}
}

// TestRulesCatchMistakes breaks one rule at a time in the rendered prod
// objects and expects the checks to say so.
func TestRulesCatchMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		breakIt    func(o *objects)
	}{
		{"no readiness probe", "no readinessProbe", func(o *objects) { container(deployment(o, "worker"), "worker").ReadinessProbe = nil }},
		{"no memory limit", "no memory limit", func(o *objects) {
			delete(container(deployment(o, "taskapi"), "taskapi").Resources.Limits, corev1.ResourceMemory)
		}},
		{"writable root", "readOnlyRootFilesystem", func(o *objects) {
			container(deployment(o, "dashboard"), "dashboard").SecurityContext.ReadOnlyRootFilesystem = nil
		}},
		{"root", "runAsNonRoot", func(o *objects) {
			deployment(o, "edge").Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
		}},
		{"capabilities kept", "drop ALL", func(o *objects) {
			container(deployment(o, "sysmon"), "sysmon").SecurityContext.Capabilities.Drop = nil
		}},
		{"PDB selects nothing", "PodDisruptionBudget edge selects the pods of no Deployment", func(o *objects) {
			byName(o.pdbs, "edge").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "edg"
		}},
		{"HPA target missing", "which is not deployed", func(o *objects) { byName(o.hpas, "edge").Spec.ScaleTargetRef.Name = "nothing" }},
		{"Service port unnamed", "is not a container port name", func(o *objects) {
			service(o, "eventedge", "edge").Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
		}},
		{"Service port misnamed", "no port named", func(o *objects) {
			service(o, "eventedge", "edge").Spec.Ports[0].TargetPort = intstr.FromString("htp")
		}},
		{"short grace period", "terminationGracePeriodSeconds", func(o *objects) {
			g := int64(30)
			deployment(o, "edge").Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}},
		{"two sysmons", "exactly 1", func(o *objects) { n := int32(2); deployment(o, "sysmon").Spec.Replicas = &n }},
		{"monitor URL without /varz", "/varz", func(o *objects) {
			c := container(deployment(o, "sysmon"), "sysmon")
			for i := range c.Env {
				if c.Env[i].Name == "SYSMON_NATS_MONITOR_URL" {
					c.Env[i].Value = "http://nats:8222"
				}
			}
		}},
		{"a secret in prod", "ships no secret value", func(o *objects) {
			o.secrets = append(o.secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "eventedge-jwt"}})
		}},
		{"no GOMEMLIMIT", "GOMEMLIMIT not set", func(o *objects) {
			c := container(deployment(o, "edge"), "edge")
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
		}},
		{"GOMEMLIMIT at the memory limit", "keep it within", func(o *objects) {
			setEnv(container(deployment(o, "edge"), "edge"), "GOMEMLIMIT", "1GiB")
		}},
		{"GOMEMLIMIT far below the memory limit", "keep it within", func(o *objects) {
			setEnv(container(deployment(o, "edge"), "edge"), "GOMEMLIMIT", "256MiB")
		}},
		{"GOMEMLIMIT from the limit itself", "comes from valueFrom", func(o *objects) {
			c := container(deployment(o, "edge"), "edge")
			for i := range c.Env {
				if c.Env[i].Name == "GOMEMLIMIT" {
					c.Env[i].Value = ""
					c.Env[i].ValueFrom = &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}
				}
			}
		}},
		{"GOMEMLIMIT unparsable", "GOMEMLIMIT \"800M\"", func(o *objects) {
			setEnv(container(deployment(o, "edge"), "edge"), "GOMEMLIMIT", "800M")
		}},
		{"literal JWT key", "does not come from a Secret", func(o *objects) {
			c := container(deployment(o, "edge"), "edge")
			for i := range c.Env {
				if c.Env[i].Name == "EDGE_JWT_SECRET" {
					c.Env[i].ValueFrom, c.Env[i].Value = nil, "x"
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := decoded(t, "prod")
			if p := check("prod", o); len(p) != 0 {
				t.Fatalf("prod breaks the rules before the change: %v", p)
			}
			tc.breakIt(o)
			p := check("prod", o)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Fatalf("problems %q, want one mentioning %q", p, tc.want)
			}
		})
	}
}

// setEnv sets the value of c's variable name, where c has it.
func setEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i].Value = value
		}
	}
}

// Lookups.

// byName returns the object of that name in list, or nil.
func byName[T interface{ GetName() string }](list []T, name string) T {
	var zero T
	for _, v := range list {
		if v.GetName() == name {
			return v
		}
	}
	return zero
}

func deployment(o *objects, name string) *appsv1.Deployment {
	for _, d := range o.deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func service(o *objects, ns, name string) *corev1.Service {
	for _, s := range o.services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func configMap(o *objects, ns, name string) *corev1.ConfigMap {
	for _, c := range o.configMaps {
		if c.Namespace == ns && c.Name == name {
			return c
		}
	}
	return nil
}

func secret(o *objects, ns, name string) *corev1.Secret {
	for _, s := range o.secrets {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func container(d *appsv1.Deployment, name string) *corev1.Container {
	if d == nil {
		return nil
	}
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// selected returns the Deployments in ns whose pod template sel matches.
func selected(p *problems, o *objects, where, ns string, sel *metav1.LabelSelector) []*appsv1.Deployment {
	if sel == nil {
		p.add("%s: no selector", where)
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		p.add("%s: selector: %v", where, err)
		return nil
	}
	if s.Empty() {
		p.add("%s: an empty selector selects every pod", where)
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range o.deployments {
		if d.Namespace == ns && s.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func hasPort(c corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

func podHasPort(d *appsv1.Deployment, name string) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return hasPort(c, name) })
}

func ingressRoutesTo(ing *networkingv1.Ingress, svc string) bool {
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, path := range r.HTTP.Paths {
			if path.Backend.Service != nil && path.Backend.Service.Name == svc {
				return true
			}
		}
	}
	return false
}

func isTrue(b *bool) bool { return b != nil && *b }

// envValue returns the literal value of a container's variable, or "".
func envValue(c *corev1.Container, name string) string {
	if c == nil {
		return ""
	}
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// The edge's GOMEMLIMIT, as a share of its container's memory limit: low
// enough to leave room for what the Go runtime does not count (the
// kernel's socket buffers are charged to the pod too), high enough not
// to make the GC run all the time at a normal load.
const (
	memLimitMinShare = 0.6
	memLimitMaxShare = 0.9
)

// checkMemLimit: the edge container sets GOMEMLIMIT within
// [memLimitMinShare, memLimitMaxShare] of its memory limit. Without it the
// heap may grow to twice its live size before a collection, past the
// container's limit, and an OOM kill drops every client of the node at
// once; with it the GC works harder as the heap nears the limit.
func checkMemLimit(p *problems, c *corev1.Container) {
	lim, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok || lim.IsZero() {
		return // checkWorkloads reports it
	}
	v := envValue(c, "GOMEMLIMIT")
	if v == "" && slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" && e.ValueFrom != nil }) {
		p.add("Deployment edge: GOMEMLIMIT comes from valueFrom: set a literal value (a resourceFieldRef would give 100 %% of the limit, with no room for the kernel's socket buffers)")
		return
	}
	if v == "" {
		p.add("Deployment edge: GOMEMLIMIT not set (the Go runtime's soft memory limit, %.0f–%.0f %% of the memory limit %s)",
			memLimitMinShare*100, memLimitMaxShare*100, lim.String())
		return
	}
	n, err := parseGoMemLimit(v)
	if err != nil {
		p.add("Deployment edge: GOMEMLIMIT %q: %v", v, err)
		return
	}
	if share := float64(n) / float64(lim.Value()); share < memLimitMinShare || share > memLimitMaxShare {
		p.add("Deployment edge: GOMEMLIMIT %s is %.0f %% of the memory limit %s: keep it within %.0f–%.0f %%",
			v, share*100, lim.String(), memLimitMinShare*100, memLimitMaxShare*100)
	}
}

// parseGoMemLimit reads a GOMEMLIMIT value as the Go runtime does
// (runtime.parseByteCount): a number of bytes with an optional unit B,
// KiB, MiB, GiB or TiB, refused when it overflows. Stricter than the
// runtime on purpose: "off" and 0 are refused too (the edge must have a
// limit).
func parseGoMemLimit(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = num, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, errors.New("want a positive number of bytes with an optional unit B, KiB, MiB, GiB or TiB, below 8 EiB")
	}
	return n * mult, nil
}

func envDuration(p *problems, c *corev1.Container, name string) (time.Duration, bool) {
	v := envValue(c, name)
	if v == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.add("%s %q: %v", name, v, err)
		return 0, false
	}
	return d, true
}

// imageTag returns the tag (or digest) of an image reference, or "".
func imageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		return image[i+1:]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return ""
}

func TestParseGoMemLimit(t *testing.T) {
	for v, want := range map[string]int64{"800MiB": 800 << 20, "1GiB": 1 << 30, "4096": 4096, "512B": 512, "64KiB": 64 << 10, "1TiB": 1 << 40} {
		if got, err := parseGoMemLimit(v); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", v, got, err, want)
		}
	}
	for _, bad := range []string{"", "off", "800M", "1.5GiB", "-1MiB", "0", "MiB", "1 GiB",
		"17592186045216MiB", // (2^44 + 800) MiB: would wrap to 800 MiB; the runtime refuses it
		"8388608TiB"} {
		if got, err := parseGoMemLimit(bad); err == nil {
			t.Errorf("%q: %d, no error", bad, got)
		}
	}
}
