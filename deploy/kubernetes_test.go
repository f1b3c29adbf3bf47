package deploy

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const sidecarPath = "kubernetes/sidecar.yaml"

// The parts of the Kubernetes objects the test reads; the rest of each document is ignored.
type (
	k8sObject struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		StringData map[string]string `yaml:"stringData"`
		Spec       yaml.Node         `yaml:"spec"`
	}
	deploymentSpec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               securityContext `yaml:"securityContext"`
		InitContainers                []container     `yaml:"initContainers"`
		Containers                    []container     `yaml:"containers"`
	}
	securityContext struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
		Privileged     *bool `yaml:"privileged"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	}
	container struct {
		Name          string   `yaml:"name"`
		Image         string   `yaml:"image"`
		RestartPolicy string   `yaml:"restartPolicy"`
		Args          []string `yaml:"args"`
		Env           []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		StartupProbe    *probe          `yaml:"startupProbe"`
		LivenessProbe   *probe          `yaml:"livenessProbe"`
		ReadinessProbe  *probe          `yaml:"readinessProbe"`
		SecurityContext securityContext `yaml:"securityContext"`
		Resources       struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
	}
	probe struct {
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"` // a port's name or number
		} `yaml:"httpGet"`
	}
	podMonitorSpec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		PodMetricsEndpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"podMetricsEndpoints"`
	}
)

// readSidecar decodes every document of sidecar.yaml.
func readSidecar(t *testing.T) []k8sObject {
	t.Helper()
	data, err := os.ReadFile(sidecarPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var objs []k8sObject
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", sidecarPath, len(objs)+1, err)
		}
		objs = append(objs, o)
	}
	return objs
}

func (c *container) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// TestKubernetesSidecar checks the invariants of the example that a typo would break silently:
// the proxy must start before and stop after the application, run unprivileged, be probed and
// scraped on the port it serves metrics on, be reached by the application where it listens, and
// be configured only with variables the binary reads.
func TestKubernetesSidecar(t *testing.T) {
	objs := readSidecar(t)
	var dep deploymentSpec
	var pm *podMonitorSpec
	secrets := map[string]map[string]string{}
	for _, o := range objs {
		switch o.Kind {
		case "Deployment":
			if err := o.Spec.Decode(&dep); err != nil {
				t.Fatal(err)
			}
		case "PodMonitor":
			pm = new(podMonitorSpec)
			if err := o.Spec.Decode(pm); err != nil {
				t.Fatal(err)
			}
			if o.APIVersion != "monitoring.coreos.com/v1" {
				t.Errorf("PodMonitor apiVersion %s: the Prometheus operator's is monitoring.coreos.com/v1", o.APIVersion)
			}
		case "Secret":
			secrets[o.Metadata.Name] = o.StringData
		}
	}
	pod := dep.Template.Spec
	if len(pod.Containers) == 0 {
		t.Fatalf("%s: no Deployment with containers", sidecarPath)
	}

	// The proxy is a native sidecar: an init container that keeps running.
	var proxy *container
	for i := range pod.InitContainers {
		if pod.InitContainers[i].Name == "pgpollwatch" {
			proxy = &pod.InitContainers[i]
		}
	}
	if proxy == nil {
		t.Fatal("no initContainer named pgpollwatch: the proxy is a native sidecar (README)")
	}
	if proxy.RestartPolicy != "Always" {
		t.Errorf("the pgpollwatch init container has restartPolicy %q: without Always it is a plain init container, and the pod waits for it to exit", proxy.RestartPolicy)
	}
	for _, c := range pod.Containers {
		if c.Name == "pgpollwatch" {
			t.Error("pgpollwatch is also among the regular containers")
		}
	}

	// Unprivileged, every container: the pod's settings count where the container has none.
	all := append(append([]container(nil), pod.InitContainers...), pod.Containers...)
	for _, c := range all {
		sc, psc := c.SecurityContext, pod.SecurityContext
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			t.Errorf("%s: runAsNonRoot is not true", c.Name)
		}
		for _, uid := range []*int64{sc.RunAsUser, psc.RunAsUser} {
			if uid != nil && *uid == 0 {
				t.Errorf("%s: runAsUser 0", c.Name)
			}
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
		}
		if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities drop %v add %v, want drop [ALL] and none added", c.Name, sc.Capabilities.Drop, sc.Capabilities.Add)
		}
		if seccomp := sc.SeccompProfile.Type; seccomp != "RuntimeDefault" && !(seccomp == "" && psc.SeccompProfile.Type == "RuntimeDefault") {
			t.Errorf("%s: seccompProfile %q, want RuntimeDefault", c.Name, seccomp)
		}
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" {
				t.Errorf("%s: no %s request", c.Name, r)
			}
		}
		if c.Resources.Limits["memory"] == "" {
			t.Errorf("%s: no memory limit", c.Name)
		}
	}

	// Every PGPOLLWATCH_ variable is a flag of the binary with a value it accepts; the others
	// would be ignored without a word. The upstream comes from a Secret this file defines.
	bin := buildShipped(t)
	flags := proxyFlags(t, bin)
	var args []string
	for _, e := range proxy.Env {
		flag, ok := flagForEnv(e.Name)
		if !ok {
			t.Errorf("pgpollwatch's env %s: the proxy reads PGPOLLWATCH_<FLAG> variables only", e.Name)
			continue
		}
		if _, known := flags[flag]; !known {
			t.Errorf("pgpollwatch's env %s: the proxy has no --%s", e.Name, flag)
			continue
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			if !ok {
				t.Errorf("%s: Secret %s has no key %s in this file", e.Name, ref.Name, ref.Key)
			}
			args = append(args, "--"+flag+"="+v)
		case e.ValueFrom != nil:
			t.Errorf("%s: only values and Secret references are checked here", e.Name)
		default:
			args = append(args, "--"+flag+"="+e.Value)
		}
	}
	checkFlagValues(t, bin, sidecarPath+" env", args)
	upstreamFromSecret := false
	for _, e := range proxy.Env {
		upstreamFromSecret = upstreamFromSecret || e.Name == "PGPOLLWATCH_UPSTREAM" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}
	if !upstreamFromSecret {
		t.Error("PGPOLLWATCH_UPSTREAM does not come from a Secret")
	}

	// Probes and scraping, all on the metrics port.
	metricsListen, ok := proxy.env("PGPOLLWATCH_METRICS_LISTEN")
	if !ok {
		t.Fatal("pgpollwatch has no PGPOLLWATCH_METRICS_LISTEN: no metrics, no probes")
	}
	if host, _, _ := strings.Cut(metricsListen, ":"); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("PGPOLLWATCH_METRICS_LISTEN=%s: the kubelet and Prometheus come from outside the pod's loopback", metricsListen)
	}
	metricsPort := portOf(t, "PGPOLLWATCH_METRICS_LISTEN", metricsListen)
	portName := ""
	for _, p := range proxy.Ports {
		if strconv.Itoa(p.ContainerPort) == metricsPort {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Fatalf("pgpollwatch's ports %v lack a named port %s (PGPOLLWATCH_METRICS_LISTEN)", proxy.Ports, metricsPort)
	}
	for _, pr := range []struct {
		what  string
		probe *probe
		path  string
	}{
		{"startupProbe", proxy.StartupProbe, "/healthz"},
		{"livenessProbe", proxy.LivenessProbe, "/healthz"},
		{"readinessProbe", proxy.ReadinessProbe, "/readyz"},
	} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("pgpollwatch has no httpGet %s", pr.what)
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path {
			t.Errorf("%s on %s, want %s", pr.what, pr.probe.HTTPGet.Path, pr.path)
		}
		if port := pr.probe.HTTPGet.Port.Value; port != portName && port != metricsPort {
			t.Errorf("%s on port %s, want %s (%s)", pr.what, port, portName, metricsPort)
		}
	}
	ann := dep.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != metricsPort || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v: want prometheus.io/scrape \"true\", port %q, path /metrics", ann, metricsPort)
	}
	if pm == nil {
		t.Error("no PodMonitor")
	} else {
		for k, v := range pm.Selector.MatchLabels {
			if dep.Template.Metadata.Labels[k] != v {
				t.Errorf("the PodMonitor selects %s=%s; the pods are labelled %v", k, v, dep.Template.Metadata.Labels)
			}
		}
		if len(pm.Selector.MatchLabels) == 0 || len(pm.PodMetricsEndpoints) != 1 || pm.PodMetricsEndpoints[0].Port != portName || pm.PodMetricsEndpoints[0].Path != "/metrics" {
			t.Errorf("PodMonitor %+v: want a selector and one endpoint on port %s, /metrics", pm, portName)
		}
	}
	for k, v := range dep.Selector.MatchLabels {
		if dep.Template.Metadata.Labels[k] != v {
			t.Errorf("the Deployment selects %s=%s; its pods are labelled %v", k, v, dep.Template.Metadata.Labels)
		}
	}

	// The application connects where the proxy listens, on the pod's loopback.
	listen, ok := proxy.env("PGPOLLWATCH_LISTEN")
	if !ok || !strings.HasPrefix(listen, "127.0.0.1:") {
		t.Errorf("PGPOLLWATCH_LISTEN=%q: want the pod's loopback, so nothing outside the pod uses the proxy", listen)
	}
	var app *container
	for i := range pod.Containers {
		if _, ok := pod.Containers[i].env("DATABASE_URL"); ok {
			app = &pod.Containers[i]
		}
	}
	if app == nil {
		t.Fatal("no container with DATABASE_URL")
	}
	dbURL, _ := app.env("DATABASE_URL")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("DATABASE_URL %q: %v", dbURL, err)
	}
	if u.Host != listen {
		t.Errorf("DATABASE_URL is on %s; the proxy listens on %s", u.Host, listen)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		t.Errorf("DATABASE_URL %q holds a password in the Deployment: take it from a Secret", dbURL)
	}

	// The pod's grace period covers the proxy's: it is stopped after the application, and
	// then lets its sessions finish for --shutdown-grace.
	graceText, ok := proxy.env("PGPOLLWATCH_SHUTDOWN_GRACE")
	if !ok {
		graceText = flags["shutdown-grace"].def
	}
	grace, err := time.ParseDuration(graceText)
	if err != nil {
		t.Fatalf("shutdown grace %q: %v", graceText, err)
	}
	if tg := pod.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second < 2*grace {
		t.Errorf("terminationGracePeriodSeconds %v: want at least twice --shutdown-grace %v, for the application's stop and then the proxy's", tg, grace)
	}
}
