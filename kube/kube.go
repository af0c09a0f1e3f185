// Package kube makes the Kubernetes manifests of a coordinated run: the
// coordinator as a Job behind a Service, the workers as an Indexed Job
// that joins it, the shared token in a Secret, and the run's input files
// in a ConfigMap and a Secret, so that the image holds nothing but the
// binary. The objects are written as JSON documents in one YAML stream
// (JSON is YAML), which kubectl applies as they are; their types here
// carry only the fields loadprof sets, with the Kubernetes API's names
// (a test decodes them strictly into the API's own Go types).
package kube

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Spec is a coordinated run on Kubernetes.
type Spec struct {
	Name      string // prefix of every object's name; DefaultName when empty
	Namespace string // "" for the kubectl context's
	Image     string
	Workers   int
	Token     string // generated when empty
	Port      int    // where the coordinator listens; DefaultPort when 0
	// RunArgs are the coordinator's `loadprof run` flags without the
	// inputs and outputs, which Manifests adds with their paths in the
	// pod.
	RunArgs []string
	// Data is the payload (one file, or the files of a directory), put in
	// a ConfigMap; TLS the --ca, --cert and --key files, put in a Secret.
	Data    Input
	TLS     []FlagFile
	Profile bool // the run has --profile: its trace goes under /results
	HTML    bool // the run asked for --html
	HLog    bool // the run asked for --hlog
	// ServeFor is how long the coordinator serves its results after the
	// run, waiting to be fetched (DefaultServeFor when 0).
	ServeFor                time.Duration
	WorkerCPU, WorkerMemory string        // resource requests of each worker
	CoordCPU, CoordMemory   string        // and of the coordinator
	ActiveDeadline          time.Duration // bounds each Job; 0 for none
	// JoinTimeout is the coordinator's --join-timeout, added to RunArgs
	// when set (pods take a while to be scheduled and pull the image).
	JoinTimeout time.Duration
	// SecretHeaders are the run's -H headers that carry credentials
	// ("Key: value"): they go into the token's Secret and reach the
	// coordinator as HeadersEnv, not as arguments.
	SecretHeaders []string
	// SecretMetricsHeaders are the --metrics-header headers that carry
	// credentials: into the Secret too, reaching the coordinator as
	// MetricsHeadersEnv.
	SecretMetricsHeaders []string
}

// HeadersEnv is the environment variable `loadprof run` reads extra
// headers from, one "Key: value" a line, as if each were given with -H.
const HeadersEnv = "LOADPROF_HEADERS"

// MetricsHeadersEnv is the environment variable `loadprof run` reads extra
// --metrics-header headers from, one "Key: value" a line.
const MetricsHeadersEnv = "LOADPROF_METRICS_HEADERS"

// Input is the payload as files.
type Input struct {
	Dir   bool   // a directory: --data is the directory of Files
	Files []File // one for a file
}

// File is a file's base name and contents.
type File struct {
	Name    string
	Content []byte
}

// FlagFile is a file a flag names (--ca FILE).
type FlagFile struct {
	Flag string // "ca"
	File File
}

// Defaults of Spec.
const (
	DefaultName     = "loadprof"
	DefaultPort     = 7070
	DefaultServeFor = 30 * time.Minute
)

// The paths inside the pods.
const (
	dataDir    = "/data"
	tlsDir     = "/tls"
	resultsDir = "/results"
)

// maxConfigMap is the most a ConfigMap may hold (etcd's limit on an
// object, with room for the rest of it).
const maxConfigMap = 1000 * 1000

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// configKey is what a ConfigMap or Secret key may be.
var configKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// Manifests returns the run's objects in the order to apply them.
func Manifests(s Spec) ([]any, error) {
	if s.Name == "" {
		s.Name = DefaultName
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.ServeFor == 0 {
		s.ServeFor = DefaultServeFor
	}
	switch {
	case len(s.Name) > 40 || !dnsLabel.MatchString(s.Name):
		return nil, fmt.Errorf("--name %q: want a DNS label of at most 40 characters (a-z, 0-9, -): it prefixes the objects' names", s.Name)
	case s.Namespace != "" && (len(s.Namespace) > 63 || !dnsLabel.MatchString(s.Namespace)):
		return nil, fmt.Errorf("--namespace %q: not a Kubernetes namespace name", s.Namespace)
	case s.Image == "":
		return nil, fmt.Errorf("--image is required: an image with the loadprof binary (see the Dockerfile)")
	case s.Workers < 1:
		return nil, fmt.Errorf("--workers %d: must be at least 1", s.Workers)
	case len(s.Data.Files) == 0:
		return nil, fmt.Errorf("--data: no payload file")
	}
	if s.Token == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		s.Token = hex.EncodeToString(b)
	}
	labels := func(role string) map[string]string {
		return map[string]string{"app.kubernetes.io/name": "loadprof", "app.kubernetes.io/instance": s.Name, "app.kubernetes.io/component": role}
	}
	meta := func(name, role string) ObjectMeta {
		return ObjectMeta{Name: name, Namespace: s.Namespace, Labels: labels(role)}
	}
	tokenSecret := s.Name + "-token"
	coordName := s.Name + "-coordinator"

	data := ConfigMap{TypeMeta: TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, Metadata: meta(s.Name+"-data", "data"), BinaryData: map[string][]byte{}}
	size := 0
	for _, f := range s.Data.Files {
		if !configKey.MatchString(f.Name) {
			return nil, fmt.Errorf("--data: file name %q cannot be a ConfigMap key (a-z, A-Z, 0-9, '-', '_', '.')", f.Name)
		}
		data.BinaryData[f.Name] = f.Content
		size += len(f.Content)
	}
	if size > maxConfigMap {
		return nil, fmt.Errorf("--data: %d bytes of payload; a ConfigMap holds at most %d: bake larger payloads into the image", size, maxConfigMap)
	}
	dataPath := path.Join(dataDir, s.Data.Files[0].Name)
	if s.Data.Dir {
		dataPath = dataDir
	}

	args := append([]string{"run"}, s.RunArgs...)
	args = append(args, "--data", dataPath, "--workers", strconv.Itoa(s.Workers), "--listen", fmt.Sprintf(":%d", s.Port),
		"--out", resultsDir+"/result.json", "--serve-results", resultsDir, "--serve-for", s.ServeFor.String(), "--quiet")
	if s.Profile {
		args = append(args, "--logdir", resultsDir+"/tb")
	}
	if s.HTML {
		args = append(args, "--html", resultsDir+"/report.html")
	}
	if s.HLog {
		args = append(args, "--hlog", resultsDir+"/result.hlog")
	}
	if s.JoinTimeout > 0 {
		args = append(args, "--join-timeout", s.JoinTimeout.String())
	}
	tokenEnv := []EnvVar{{Name: "LOADPROF_TOKEN", ValueFrom: &EnvVarSource{SecretKeyRef: &SecretKeySelector{Name: tokenSecret, Key: "token"}}}}
	secretData := map[string]string{"token": s.Token}
	coordEnv := tokenEnv
	if len(s.SecretHeaders) > 0 {
		// Credentials stay out of the Job's args, which whoever may read
		// the Job reads: the run takes them from its environment.
		secretData["headers"] = strings.Join(s.SecretHeaders, "\n")
		coordEnv = append(slices.Clip(tokenEnv), EnvVar{Name: HeadersEnv, ValueFrom: &EnvVarSource{SecretKeyRef: &SecretKeySelector{Name: tokenSecret, Key: "headers"}}})
	}
	if len(s.SecretMetricsHeaders) > 0 {
		secretData["metrics-headers"] = strings.Join(s.SecretMetricsHeaders, "\n")
		coordEnv = append(slices.Clip(coordEnv), EnvVar{Name: MetricsHeadersEnv, ValueFrom: &EnvVarSource{SecretKeyRef: &SecretKeySelector{Name: tokenSecret, Key: "metrics-headers"}}})
	}
	objs := []any{
		Secret{TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Secret"}, Metadata: meta(tokenSecret, "token"), Type: "Opaque", StringData: secretData},
		data,
	}
	volumes := []Volume{
		{Name: "data", ConfigMap: &ConfigMapVolumeSource{Name: data.Metadata.Name}},
		{Name: "results", EmptyDir: &EmptyDirVolumeSource{}},
	}
	mounts := []VolumeMount{{Name: "data", MountPath: dataDir, ReadOnly: true}, {Name: "results", MountPath: resultsDir}}
	if len(s.TLS) > 0 {
		sec := Secret{TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Secret"}, Metadata: meta(s.Name+"-tls", "tls"), Type: "Opaque", Data: map[string][]byte{}}
		for _, f := range s.TLS {
			key := f.Flag + "-" + f.File.Name
			if !configKey.MatchString(key) {
				return nil, fmt.Errorf("--%s: file name %q cannot be a Secret key", f.Flag, f.File.Name)
			}
			sec.Data[key] = f.File.Content
			args = append(args, "--"+f.Flag, path.Join(tlsDir, key))
		}
		objs = append(objs, sec)
		volumes = append(volumes, Volume{Name: "tls", Secret: &SecretVolumeSource{SecretName: sec.Metadata.Name}})
		mounts = append(mounts, VolumeMount{Name: "tls", MountPath: tlsDir, ReadOnly: true})
	}
	objs = append(objs, Service{
		TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Service"}, Metadata: meta(coordName, "coordinator"),
		Spec: ServiceSpec{Selector: labels("coordinator"), Ports: []ServicePort{{Name: "join", Port: int32(s.Port), TargetPort: s.Port, Protocol: "TCP"}}},
	})
	one, zero := int32(1), int32(0)
	var deadline *int64
	if s.ActiveDeadline > 0 {
		d := int64(s.ActiveDeadline.Seconds())
		deadline = &d
	}
	nonRoot := true
	uid := int64(65532)
	security := &PodSecurityContext{RunAsNonRoot: &nonRoot, RunAsUser: &uid}
	// The restricted Pod Security Standard: a namespace that enforces it
	// admits the pods. loadprof needs no privilege: it sends requests.
	noEscalation := false
	restricted := &SecurityContext{AllowPrivilegeEscalation: &noEscalation, Capabilities: &Capabilities{Drop: []string{"ALL"}},
		SeccompProfile: &SeccompProfile{Type: "RuntimeDefault"}}
	objs = append(objs, Job{
		TypeMeta: TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, Metadata: meta(coordName, "coordinator"),
		Spec: JobSpec{Completions: &one, Parallelism: &one, BackoffLimit: &zero, ActiveDeadlineSeconds: deadline,
			Template: PodTemplateSpec{Metadata: ObjectMeta{Labels: labels("coordinator")}, Spec: PodSpec{
				RestartPolicy: "Never", SecurityContext: security, Volumes: volumes,
				Containers: []Container{{
					Name: "coordinator", Image: s.Image, Args: args, Env: coordEnv, VolumeMounts: mounts,
					Ports:     []ContainerPort{{Name: "join", ContainerPort: int32(s.Port), Protocol: "TCP"}},
					Resources: requests(s.CoordCPU, s.CoordMemory), SecurityContext: restricted,
				}},
			}}},
	})
	n := int32(s.Workers)
	workerArgs := []string{"worker", "--join", fmt.Sprintf("%s:%d", coordName, s.Port)}
	objs = append(objs, Job{
		TypeMeta: TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, Metadata: meta(s.Name+"-workers", "worker"),
		// A worker that fails is not started again: the run has begun
		// without it, and the coordinator would refuse it.
		Spec: JobSpec{CompletionMode: "Indexed", Completions: &n, Parallelism: &n, BackoffLimit: &zero, ActiveDeadlineSeconds: deadline,
			Template: PodTemplateSpec{Metadata: ObjectMeta{Labels: labels("worker")}, Spec: PodSpec{
				RestartPolicy: "Never", SecurityContext: security,
				// The payload files the coordinator sends are written
				// here, whatever the image's file system allows.
				Volumes: []Volume{{Name: "tmp", EmptyDir: &EmptyDirVolumeSource{}}},
				Containers: []Container{{
					Name: "worker", Image: s.Image, Args: workerArgs, Env: tokenEnv,
					Resources:    requests(s.WorkerCPU, s.WorkerMemory),
					VolumeMounts: []VolumeMount{{Name: "tmp", MountPath: "/tmp"}}, SecurityContext: restricted,
				}},
			}}},
	})
	return objs, nil
}

func requests(cpu, memory string) ResourceRequirements {
	r := ResourceRequirements{Requests: map[string]string{}}
	if cpu != "" {
		r.Requests["cpu"] = cpu
	}
	if memory != "" {
		r.Requests["memory"] = memory
		// A load generator that runs out of memory should be killed, not
		// slow the node: its memory is bounded, its CPU is not (a CPU
		// limit throttles the load it sends).
		r.Limits = map[string]string{"memory": memory}
	}
	return r
}

// Write writes objs as one v1 List, indented JSON: kubectl applies and
// deletes it as the objects it holds, and JSON needs no YAML library to
// write or read.
func Write(w io.Writer, objs []any) error {
	list := struct {
		TypeMeta
		Items []any `json:"items"`
	}{TypeMeta{APIVersion: "v1", Kind: "List"}, objs}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}
