package kube

// The Kubernetes objects, only the fields loadprof sets, named and shaped
// as in the API (k8s.io/api core/v1 and batch/v1): TestManifestsDecodeStrictly
// decodes every one into the API's own type, rejecting unknown fields.

// TypeMeta is apiVersion and kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is an object's metadata.
type ObjectMeta struct {
	Name      string            `json:"name,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Secret is a core/v1 Secret.
type Secret struct {
	TypeMeta
	Metadata   ObjectMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
}

// ConfigMap is a core/v1 ConfigMap.
type ConfigMap struct {
	TypeMeta
	Metadata   ObjectMeta        `json:"metadata"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// Service is a core/v1 Service.
type Service struct {
	TypeMeta
	Metadata ObjectMeta  `json:"metadata"`
	Spec     ServiceSpec `json:"spec"`
}

// ServiceSpec is a Service's spec.
type ServiceSpec struct {
	Selector map[string]string `json:"selector"`
	Ports    []ServicePort     `json:"ports"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name       string `json:"name"`
	Protocol   string `json:"protocol"`
	Port       int32  `json:"port"`
	TargetPort int    `json:"targetPort"`
}

// Job is a batch/v1 Job.
type Job struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
	Spec     JobSpec    `json:"spec"`
}

// JobSpec is a Job's spec.
type JobSpec struct {
	CompletionMode        string          `json:"completionMode,omitempty"`
	Completions           *int32          `json:"completions,omitempty"`
	Parallelism           *int32          `json:"parallelism,omitempty"`
	BackoffLimit          *int32          `json:"backoffLimit,omitempty"`
	ActiveDeadlineSeconds *int64          `json:"activeDeadlineSeconds,omitempty"`
	Template              PodTemplateSpec `json:"template"`
}

// PodTemplateSpec is a Job's pod template.
type PodTemplateSpec struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     PodSpec    `json:"spec"`
}

// PodSpec is a pod's spec.
type PodSpec struct {
	RestartPolicy   string              `json:"restartPolicy"`
	SecurityContext *PodSecurityContext `json:"securityContext,omitempty"`
	Containers      []Container         `json:"containers"`
	Volumes         []Volume            `json:"volumes,omitempty"`
}

// PodSecurityContext is the pod's security settings.
type PodSecurityContext struct {
	RunAsNonRoot *bool  `json:"runAsNonRoot,omitempty"`
	RunAsUser    *int64 `json:"runAsUser,omitempty"`
}

// Container is one container of a pod.
type Container struct {
	Name         string               `json:"name"`
	Image        string               `json:"image"`
	Args         []string             `json:"args"`
	Env          []EnvVar             `json:"env,omitempty"`
	Ports        []ContainerPort      `json:"ports,omitempty"`
	Resources    ResourceRequirements `json:"resources"`
	VolumeMounts []VolumeMount        `json:"volumeMounts,omitempty"`
	// SecurityContext is what the restricted Pod Security Standard asks
	// of every container.
	SecurityContext *SecurityContext `json:"securityContext,omitempty"`
}

// SecurityContext is a container's security settings.
type SecurityContext struct {
	AllowPrivilegeEscalation *bool           `json:"allowPrivilegeEscalation,omitempty"`
	Capabilities             *Capabilities   `json:"capabilities,omitempty"`
	SeccompProfile           *SeccompProfile `json:"seccompProfile,omitempty"`
}

// Capabilities are the Linux capabilities added to and dropped from a
// container.
type Capabilities struct {
	Drop []string `json:"drop,omitempty"`
}

// SeccompProfile is the seccomp filter of a container.
type SeccompProfile struct {
	Type string `json:"type"`
}

// ContainerPort is a port a container listens on.
type ContainerPort struct {
	Name          string `json:"name"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// ResourceRequirements are a container's requests and limits.
type ResourceRequirements struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

// EnvVar is an environment variable.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource is where an environment variable's value comes from.
type EnvVarSource struct {
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// SecretKeySelector is one key of a Secret.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Volume is a pod's volume.
type Volume struct {
	Name      string                 `json:"name"`
	ConfigMap *ConfigMapVolumeSource `json:"configMap,omitempty"`
	Secret    *SecretVolumeSource    `json:"secret,omitempty"`
	EmptyDir  *EmptyDirVolumeSource  `json:"emptyDir,omitempty"`
}

// ConfigMapVolumeSource mounts a ConfigMap.
type ConfigMapVolumeSource struct {
	Name string `json:"name"`
}

// SecretVolumeSource mounts a Secret.
type SecretVolumeSource struct {
	SecretName string `json:"secretName"`
}

// EmptyDirVolumeSource is a scratch directory.
type EmptyDirVolumeSource struct{}

// VolumeMount mounts a volume into a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}
