"""Softmax regression and an MLP from scratch (own softmax, cross-entropy, SGD, accuracy)."""
import torch
from torch.utils.data import DataLoader, TensorDataset

# data loading (synthetic 28-pixel "images" with 5 classes)
features, labels = torch.tensor(DATA["features"]), torch.tensor(DATA["labels"])
loader = DataLoader(TensorDataset(features, labels), batch_size=20)
num_inputs, num_outputs, num_hiddens = 28, 5, 16


def softmax(X):
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    return X_exp / X_exp.sum(1, keepdim=True)


def cross_entropy(y_hat, y):
    return -torch.log(y_hat[list(range(len(y_hat))), y])


def accuracy(y_hat, y):
    return float((y_hat.argmax(axis=1).type(y.dtype) == y).sum())


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


losses = []
W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
b = torch.zeros(num_outputs, requires_grad=True)
W, b = SHARED([W, b])
W.requires_grad_(True), b.requires_grad_(True)
for epoch in range(3):
    for X, y in loader:
        l = cross_entropy(softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b), y)
        l.sum().backward()
        sgd([W, b], 0.5, X.shape[0])
        losses.append(l.mean().item())

W1 = torch.randn(num_inputs, num_hiddens) * 0.01
b1 = torch.zeros(num_hiddens)
W2 = torch.randn(num_hiddens, num_outputs) * 0.01
b2 = torch.zeros(num_outputs)
params = SHARED([W1, b1, W2, b2])
for p in params:
    p.requires_grad_()
W1, b1, W2, b2 = params


def relu(X):
    return torch.max(X, torch.zeros_like(X))


def net(X):
    H = relu(X @ W1 + b1)
    return H @ W2 + b2


for epoch in range(3):
    acc = 0.0
    for X, y in loader:
        y_hat = softmax(net(X))
        l = cross_entropy(y_hat, y)
        l.mean().backward()
        sgd(params, 0.5, 1)
        losses.append(l.mean().item())
        acc += accuracy(y_hat, y)
    print(f"epoch {epoch}: train acc {acc / len(loader.dataset):.3f}")
