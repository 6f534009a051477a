"""Scalar-autograd style: a tiny MLP on two moons with a max-margin loss and L2, manual SGD."""
import torch

# data loading (the harness gives two-moons points with labels -1/+1)
X, y = torch.tensor(DATA["X"]), torch.tensor(DATA["y"])

torch.manual_seed(1337)
W1, b1 = torch.randn(2, 16) * 0.5, torch.zeros(16)
W2, b2 = torch.randn(16, 16) * 0.25, torch.zeros(16)
W3, b3 = torch.randn(16, 1) * 0.25, torch.zeros(1)
params = SHARED([W1, b1, W2, b2, W3, b3])
for p in params:
    p.requires_grad_(True)
W1, b1, W2, b2, W3, b3 = params


def model(x):
    h = torch.relu(x @ W1 + b1)
    h = torch.relu(h @ W2 + b2)
    return (h @ W3 + b3).squeeze(1)


losses = []
for k in range(30):
    scores = model(X)
    data_loss = torch.relu(1 + -y * scores).mean()
    reg_loss = 1e-4 * sum((p * p).sum() for p in params)
    total_loss = data_loss + reg_loss
    accuracy = ((y > 0) == (scores > 0)).float().mean()
    for p in params:
        if p.grad is not None:
            p.grad.zero_()
    total_loss.backward()
    learning_rate = 1.0 - 0.9 * k / 30
    with torch.no_grad():
        for p in params:
            p -= learning_rate * p.grad
    losses.append(total_loss.item())
    if k % 10 == 0:
        print(f"step {k} loss {total_loss.item()}, accuracy {accuracy.item() * 100}%")
