package k8smeta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The API server has no controllers, kubelet or scheduler: these helpers
// create what they would (ReplicaSets, Jobs, pods bound to a node, pod
// status) with the admin client.

const priorityClass = "siemship-test-high"

func createNamespace(t testing.TB, name string, labels, annotations map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
	if _, err := kenv.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func createNode(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := kenv.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
}

func ensurePriorityClass(t testing.TB) {
	t.Helper()
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: priorityClass}, Value: 1000}
	_, err := kenv.Client.SchedulingV1().PriorityClasses().Create(context.Background(), pc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create priority class: %v", err)
	}
}

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers:    []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
			RestartPolicy: corev1.RestartPolicyNever,
		},
	}
}

func controllerRef(apiVersion, kind string, meta metav1.ObjectMeta) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: meta.Name, UID: meta.UID, Controller: &yes}
}

// createDeploymentRS creates a Deployment and a ReplicaSet it controls, and
// returns the owner reference a pod of the ReplicaSet carries.
func createDeploymentRS(t testing.TB, ns, name, hash string) metav1.OwnerReference {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       appsv1.DeploymentSpec{Selector: sel, Template: podTemplate(labels)},
	}
	d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	d, err := kenv.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-" + hash, Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", d.ObjectMeta)},
		},
		Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: d.Spec.Template},
	}
	rs, err = kenv.Client.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create replicaset: %v", err)
	}
	return controllerRef("apps/v1", "ReplicaSet", rs.ObjectMeta)
}

// createCronJobJob creates a CronJob and a Job it controls, and returns the
// owner reference a pod of the Job carries.
func createCronJobJob(t testing.TB, ns, name, suffix string) metav1.OwnerReference {
	t.Helper()
	ctx := context.Background()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule:    "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate(nil)}},
		},
	}
	cj, err := kenv.Client.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create cronjob: %v", err)
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-" + suffix, Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{controllerRef("batch/v1", "CronJob", cj.ObjectMeta)},
		},
		Spec: batchv1.JobSpec{Template: podTemplate(nil)},
	}
	job, err = kenv.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	return controllerRef("batch/v1", "Job", job.ObjectMeta)
}

// podSpec describes a pod to create on a node and the status to give it.
type podSpec struct {
	ns, name, node string
	owner          *metav1.OwnerReference
	labels         map[string]string
	annotations    map[string]string
	serviceAccount string
	hostNetwork    bool
	priority       bool
	ip             string
	containerID    string // of the first container; random when empty
}

// createPod creates the pod, bound to its node, then sets its status as a
// kubelet would: running container with a containerd id, pod and host IPs.
// It returns the pod with the id of its first container (without
// "containerd://").
func createPod(t testing.TB, s podSpec) (*corev1.Pod, string) {
	t.Helper()
	p, id, err := tryCreatePod(s)
	if err != nil {
		t.Fatal(err)
	}
	return p, id
}

// tryCreatePod is createPod for goroutines other than the test's.
func tryCreatePod(s podSpec) (*corev1.Pod, string, error) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns, Labels: s.labels, Annotations: s.annotations},
		Spec: corev1.PodSpec{
			NodeName:           s.node,
			ServiceAccountName: s.serviceAccount,
			HostNetwork:        s.hostNetwork,
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"),
				}},
			}},
		},
	}
	if s.owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*s.owner}
	}
	if s.priority {
		p.Spec.PriorityClassName = priorityClass
	}
	return createRunningPod(p, s.ip, s.containerID)
}

// createRunningPod creates p and sets its status as a kubelet would, with
// firstID (random when empty) as the id of the first container.
func createRunningPod(p *corev1.Pod, ip, firstID string) (*corev1.Pod, string, error) {
	ctx := context.Background()
	ns, name := p.Namespace, p.Name
	p, err := kenv.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("create pod %s/%s: %w", ns, name, err)
	}
	if ip == "" {
		ip = "10.244.1.7"
	}
	p.Status.HostIP = "192.168.10.4"
	p.Status.HostIPs = []corev1.HostIP{{IP: "192.168.10.4"}}
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.Phase = corev1.PodRunning
	var id string
	for i, c := range p.Spec.Containers {
		cid := randomHex(32)
		if i == 0 {
			if firstID != "" {
				cid = firstID
			}
			id = cid
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "registry.example/app@sha256:" + randomHex(32),
			ContainerID: "containerd://" + cid, Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		})
	}
	p, err = kenv.Client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("update status of pod %s/%s: %w", ns, p.Name, err)
	}
	return p, id, nil
}

func deletePod(t testing.TB, ns, name string) {
	t.Helper()
	zero := int64(0) // no kubelet confirms a graceful deletion
	err := kenv.Client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
}

func patchLabels(t testing.TB, kind, ns, name string, labels map[string]string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch kind {
	case "namespace":
		_, err = kenv.Client.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	case "pod":
		_, err = kenv.Client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		t.Fatalf("patch %s %s: %v", kind, name, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
