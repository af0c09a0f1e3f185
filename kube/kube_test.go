package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func testSpec() Spec {
	return Spec{
		Name: "bench", Namespace: "load", Image: "registry.example/loadprof:1", Workers: 4, Token: "t0ken",
		RunArgs: []string{"--url", "http://model.serving:8501/v1/models/m:predict", "--rate", "400", "--duration", "60s"},
		Data:    Input{Files: []File{{Name: "data.json", Content: []byte(`{"instances": [[1, 2]]}`)}}},
		TLS:     []FlagFile{{Flag: "ca", File: File{Name: "ca.pem", Content: []byte("PEM")}}},
		Profile: true, WorkerCPU: "2", WorkerMemory: "1Gi", CoordCPU: "500m", CoordMemory: "256Mi",
	}
}

// documents are the items of a v1 List, decoded strictly.
func documents(t *testing.T, stream []byte) []json.RawMessage {
	t.Helper()
	var list struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	strict(t, stream, &list)
	if list.APIVersion != "v1" || list.Kind != "List" {
		t.Fatalf("not a v1 List: %s %s", list.APIVersion, list.Kind)
	}
	return list.Items
}

// strict decodes data into v, refusing any field v's type does not have.
func strict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%T: %v\n%s", v, err, data)
	}
}

// manifests are the objects of testSpec decoded into the API's types.
type manifests struct {
	secrets  map[string]corev1.Secret
	configs  map[string]corev1.ConfigMap
	service  corev1.Service
	jobs     map[string]batchv1.Job
	kinds    []string
	rawBytes []byte
}

func decodeAll(t *testing.T, s Spec) manifests {
	t.Helper()
	objs, err := Manifests(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, objs); err != nil {
		t.Fatal(err)
	}
	m := manifests{secrets: map[string]corev1.Secret{}, configs: map[string]corev1.ConfigMap{}, jobs: map[string]batchv1.Job{}, rawBytes: buf.Bytes()}
	for _, doc := range documents(t, buf.Bytes()) {
		var head struct{ APIVersion, Kind string }
		if err := json.Unmarshal(doc, &head); err != nil {
			t.Fatal(err)
		}
		m.kinds = append(m.kinds, head.Kind)
		switch head.APIVersion + " " + head.Kind {
		case "v1 Secret":
			var o corev1.Secret
			strict(t, doc, &o)
			m.secrets[o.Name] = o
		case "v1 ConfigMap":
			var o corev1.ConfigMap
			strict(t, doc, &o)
			m.configs[o.Name] = o
		case "v1 Service":
			strict(t, doc, &m.service)
		case "batch/v1 Job":
			var o batchv1.Job
			strict(t, doc, &o)
			m.jobs[o.Name] = o
		default:
			t.Fatalf("unexpected object %s %s", head.APIVersion, head.Kind)
		}
	}
	return m
}

func TestManifestsDecodeStrictlyIntoTheKubernetesTypes(t *testing.T) {
	s := testSpec()
	m := decodeAll(t, s)
	if want := []string{"Secret", "ConfigMap", "Secret", "Service", "Job", "Job"}; !slices.Equal(m.kinds, want) {
		t.Fatalf("kinds %v, want %v", m.kinds, want)
	}
	workers, ok := m.jobs["bench-workers"]
	if !ok {
		t.Fatalf("no workers job: %v", m.jobs)
	}
	ws := workers.Spec
	if ws.CompletionMode == nil || *ws.CompletionMode != batchv1.IndexedCompletion || *ws.Parallelism != 4 || *ws.Completions != 4 {
		t.Errorf("workers job: mode %v parallelism %v completions %v", ws.CompletionMode, ws.Parallelism, ws.Completions)
	}
	wc := ws.Template.Spec.Containers[0]
	if q := wc.Resources.Requests[corev1.ResourceCPU]; q.Cmp(resource.MustParse("2")) != 0 {
		t.Errorf("worker cpu request %v", q.String())
	}
	if q := wc.Resources.Requests[corev1.ResourceMemory]; q.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("worker memory request %v", q.String())
	}
	if _, ok := wc.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit would throttle the load")
	}
	// Workers join the coordinator's Service by name and port.
	join := wc.Args[slices.Index(wc.Args, "--join")+1]
	if join != m.service.Name+":7070" || m.service.Spec.Ports[0].Port != 7070 {
		t.Errorf("workers join %q; service %s port %d", join, m.service.Name, m.service.Spec.Ports[0].Port)
	}
	coord := m.jobs["bench-coordinator"]
	// The Service selects the coordinator's pod.
	for k, v := range m.service.Spec.Selector {
		if coord.Spec.Template.Labels[k] != v {
			t.Errorf("service selector %s=%s does not select the coordinator (%v)", k, v, coord.Spec.Template.Labels)
		}
		if workers.Spec.Template.Labels[k] == v && k == "app.kubernetes.io/component" {
			t.Errorf("service selects the workers too")
		}
	}
	// Both read the token from the Secret there is.
	for _, c := range []corev1.Container{coord.Spec.Template.Spec.Containers[0], wc} {
		ref := c.Env[0].ValueFrom.SecretKeyRef
		if c.Env[0].Name != "LOADPROF_TOKEN" || string(m.secrets[ref.Name].StringData[ref.Key]) != "t0ken" {
			t.Errorf("%s: token from %+v", c.Name, ref)
		}
	}
	cc := coord.Spec.Template.Spec.Containers[0]
	args := strings.Join(cc.Args, " ")
	for _, want := range []string{"run --url http://model.serving:8501/v1/models/m:predict --rate 400", "--data /data/data.json", "--workers 4", "--listen :7070",
		"--out /results/result.json", "--serve-results /results", "--logdir /results/tb", "--ca /tls/ca-ca.pem"} {
		if !strings.Contains(args, want) {
			t.Errorf("coordinator args lack %q: %s", want, args)
		}
	}
	// Every volume is an object of the manifests; the payload is in it.
	for _, v := range coord.Spec.Template.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			if string(m.configs[v.ConfigMap.Name].BinaryData["data.json"]) != `{"instances": [[1, 2]]}` {
				t.Errorf("volume %s: configmap %s lacks the payload", v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if string(m.secrets[v.Secret.SecretName].Data["ca-ca.pem"]) != "PEM" {
				t.Errorf("volume %s: secret %s lacks the CA", v.Name, v.Secret.SecretName)
			}
		}
	}
	for _, o := range []string{coord.Namespace, workers.Namespace, m.service.Namespace} {
		if o != "load" {
			t.Errorf("namespace %q", o)
		}
	}
}

func TestManifestsRefuseWhatKubernetesWouldNot(t *testing.T) {
	for _, c := range []struct {
		edit func(*Spec)
		want string
	}{
		{func(s *Spec) { s.Name = "Bench_1" }, "--name"},
		{func(s *Spec) { s.Image = "" }, "--image"},
		{func(s *Spec) { s.Workers = 0 }, "--workers"},
		{func(s *Spec) { s.Data.Files[0].Content = make([]byte, 2<<20) }, "ConfigMap holds at most"},
		{func(s *Spec) { s.Data.Files[0].Name = "a b.json" }, "cannot be a ConfigMap key"},
	} {
		s := testSpec()
		s.Data.Files = slices.Clone(s.Data.Files)
		c.edit(&s)
		if _, err := Manifests(s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error with %q, got %v", c.want, err)
		}
	}
}

func TestManifestsGenerateATokenWhenNoneIsGiven(t *testing.T) {
	s := testSpec()
	s.Token = ""
	a, b := decodeAll(t, s), decodeAll(t, s)
	ta, tb := a.secrets["bench-token"].StringData["token"], b.secrets["bench-token"].StringData["token"]
	if len(ta) < 32 || ta == tb {
		t.Errorf("tokens %q and %q: want long and random", ta, tb)
	}
}

// fakeAPIServer answers the discovery kubectl does before a client-side
// dry run, and "not found" for every object: just enough of a cluster for
// kubectl to map the manifests' kinds and say it would create them.
func fakeAPIServer(t *testing.T) string {
	t.Helper()
	resources := func(gv string, rs ...[2]string) map[string]any {
		var list []map[string]any
		for _, r := range rs {
			list = append(list, map[string]any{"name": r[0], "singularName": "", "namespaced": true, "kind": r[1],
				"verbs": []string{"create", "delete", "get", "list", "patch", "update"}})
		}
		return map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}
	}
	routes := map[string]any{
		"/api": map[string]any{"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []map[string]string{{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}}},
		"/apis": map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": []map[string]any{{"name": "batch",
			"versions": []map[string]string{{"groupVersion": "batch/v1", "version": "v1"}}, "preferredVersion": map[string]string{"groupVersion": "batch/v1", "version": "v1"}}}},
		"/api/v1":        resources("v1", [2]string{"secrets", "Secret"}, [2]string{"configmaps", "ConfigMap"}, [2]string{"services", "Service"}),
		"/apis/batch/v1": resources("batch/v1", [2]string{"jobs", "Job"}),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if body, ok := routes[r.URL.Path]; ok {
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
	}))
	t.Cleanup(srv.Close)
	config := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: %s\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\nusers:\n- name: fake\n  user: {}\ncurrent-context: fake\n", srv.URL)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubectlAcceptsTheManifests runs `kubectl apply --dry-run=client`
// when a kubectl is installed (Debian: kubernetes-client), against a fake
// API server on loopback that only answers discovery.
func TestKubectlAcceptsTheManifests(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on PATH (Debian: apt-get install kubernetes-client)")
	}
	m := decodeAll(t, testSpec())
	path := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(path, m.rawBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "apply", "--dry-run=client", "--validate=false", "-o", "name", "-f", path)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+fakeAPIServer(t), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl: %v\n%s", err, out)
	}
	t.Logf("kubectl: %s", out)
	for _, want := range []string{"secret/bench-token", "configmap/bench-data", "secret/bench-tls", "service/bench-coordinator", "job.batch/bench-coordinator", "job.batch/bench-workers"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl did not take %s:\n%s", want, out)
		}
	}
}

// Every container meets the restricted Pod Security Standard, so that a
// namespace that enforces it admits the run.
func TestEveryContainerMeetsTheRestrictedPodSecurityStandard(t *testing.T) {
	m := decodeAll(t, testSpec())
	for name, job := range m.jobs {
		pod := job.Spec.Template.Spec
		if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: the pod may run as root", name)
		}
		for _, c := range pod.Containers {
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s/%s: no securityContext", name, c.Name)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s/%s: allowPrivilegeEscalation is not false", name, c.Name)
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
				t.Errorf("%s/%s: capabilities %+v, want drop [ALL]", name, c.Name, sc.Capabilities)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Errorf("%s/%s: seccompProfile %+v, want RuntimeDefault", name, c.Name, sc.SeccompProfile)
			}
		}
	}
}
