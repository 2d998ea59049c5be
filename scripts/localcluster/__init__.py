"""A one-node Kubernetes cluster on this machine, from bare processes, the way Kubernetes'
``hack/local-up-cluster.sh`` and minikube's ``none`` driver run one: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler; a real kubelet over containerd's CRI with runc, the CNI
bridge, kube-proxy, CoreDNS and a local image registry; kwok's fake ``gpu-node`` beside the real node,
so the real scheduler decides GPU placement while CPU work really runs; KServe's controller in
RawDeployment mode and the local-path storage provisioner. Docker builds the images.

``scripts/local-cluster.sh up|down|status|env`` is the entry point (``make local-cluster``); the
cluster tests (``tests/cluster``) use the same functions.
"""
