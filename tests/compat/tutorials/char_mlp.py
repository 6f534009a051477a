"""A character-level MLP language model with raw tensors (embedding table, tanh hidden layer)."""
import torch
import torch.nn.functional as F

# data loading (the harness gives a word list)
words = DATA["words"]
chars = sorted(set("".join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
vocab_size = len(itos)
block_size = 3
X, Y = [], []
for w in words:
    context = [0] * block_size
    for ch in w + ".":
        ix = stoi[ch]
        X.append(context)
        Y.append(ix)
        context = context[1:] + [ix]
X, Y = torch.tensor(X), torch.tensor(Y)

g = torch.Generator().manual_seed(2147483647)
C = torch.randn((vocab_size, 6), generator=g)
W1 = torch.randn((block_size * 6, 40), generator=g) * 0.2
b1 = torch.randn(40, generator=g) * 0.01
W2 = torch.randn((40, vocab_size), generator=g) * 0.01
b2 = torch.randn(vocab_size, generator=g) * 0
parameters = SHARED([C, W1, b1, W2, b2])
C, W1, b1, W2, b2 = parameters
for p in parameters:
    p.requires_grad = True
print(sum(p.nelement() for p in parameters), "parameters")

losses = []
for i in range(40):
    ix = SHARED(torch.randint(0, X.shape[0], (32,), generator=g))
    emb = C[X[ix]]                                  # (32, 3, 6)
    h = torch.tanh(emb.view(-1, block_size * 6) @ W1 + b1)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Y[ix])
    for p in parameters:
        p.grad = None
    loss.backward()
    lr = 0.1 if i < 30 else 0.01
    for p in parameters:
        p.data += -lr * p.grad
    losses.append(loss.item())

with torch.no_grad():
    emb = C[X]
    h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)
    full_loss = F.cross_entropy(h @ W2 + b2, Y)
losses.append(full_loss.item())
out, context = [], [0] * block_size
probs = F.softmax(torch.tanh(C[torch.tensor([context])].view(1, -1) @ W1 + b1) @ W2 + b2, dim=1)
ix = torch.multinomial(probs, num_samples=1, replacement=True, generator=g).item()
print(f"loss {full_loss.item():.4f}; sampled first char {itos[ix]!r}")
