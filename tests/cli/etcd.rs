//! withlock's etcd mode (placeholder while the harness is proven).
