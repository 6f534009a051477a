"""The char MLP's sequel: Linear/BatchNorm1d/Tanh stacks with per-layer diagnostics
(activation and gradient statistics, update-to-data ratios)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

# data loading (the harness gives integer contexts and targets)
Xtr, Ytr = torch.tensor(DATA["X"]), torch.tensor(DATA["Y"])
vocab_size, block_size, n_embd, n_hidden = 27, 3, 8, 32

torch.manual_seed(42)
model = nn.Sequential(
    nn.Embedding(vocab_size, n_embd), nn.Flatten(),
    nn.Linear(n_embd * block_size, n_hidden, bias=False), nn.BatchNorm1d(n_hidden), nn.Tanh(),
    nn.Linear(n_hidden, n_hidden, bias=False), nn.BatchNorm1d(n_hidden), nn.Tanh(),
    nn.Linear(n_hidden, vocab_size),
)
with torch.no_grad():
    model[-1].weight *= 0.1
model.load_state_dict(SHARED(model.state_dict()))
parameters = list(model.parameters())
for p in parameters:
    p.requires_grad = True

losses, ud = [], []
for i in range(12):
    ix = torch.arange(i * 16, i * 16 + 32) % Xtr.shape[0]
    Xb, Yb = Xtr[ix], Ytr[ix]
    x = Xb
    for layer in model:
        x = layer(x)
        if isinstance(layer, nn.Tanh):
            layer.out = x
            x.retain_grad()
    loss = F.cross_entropy(x, Yb)
    for p in parameters:
        p.grad = None
    loss.backward()
    lr = 0.1
    for p in parameters:
        p.data += -lr * p.grad
    with torch.no_grad():
        ud.append([((lr * p.grad).std() / p.data.std()).log10().item() for p in parameters
                   if p.ndim == 2])
    losses.append(loss.item())

for i, layer in enumerate(model):
    if isinstance(layer, nn.Tanh):
        t = layer.out
        print(f"layer {i} ({layer.__class__.__name__}): mean {t.mean():+.2f}, std {t.std():.2f}, "
              f"saturated: {(t.abs() > 0.97).float().mean() * 100:.2f}%")
        g = layer.out.grad
        print(f"layer {i}: grad mean {g.mean():+f}, std {g.std():e}")
for p in parameters:
    if p.dim() == 2:
        print(f"weight {tuple(p.shape)} | grad:data ratio {p.grad.std() / p.std():e}")
losses.extend(ud[-1])
