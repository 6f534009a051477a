"""A character-level recurrent language model: Embedding -> 2-layer LSTM -> Linear, trained
with truncated backpropagation through time, then the same with a GRU; Adam and gradient
clipping; sampling a few characters at the end."""
import torch
import torch.nn as nn
import torch.nn.functional as F

# data loading (the harness gives a short text)
text = DATA["text"]
chars = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for ch, i in stoi.items()}
data = torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
vocab_size, seq_len, batch_size = len(chars), 12, 4


class CharRNN(nn.Module):
    def __init__(self, cell, vocab_size, embed=8, hidden=16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(embed, hidden, num_layers=2, batch_first=True, dropout=DROPOUT)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx, state=None):
        out, state = self.rnn(self.embed(idx), state)   # (B, T, H)
        return self.head(out), state                   # (B, T, vocab)


def detach(state):
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


losses = []
for cell in ("lstm", "gru"):
    model = CharRNN(cell, vocab_size)
    model.load_state_dict(SHARED(model.state_dict()))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    state = None
    for step in range(8):
        starts = SHARED(torch.randint(0, len(data) - seq_len - 1, (batch_size,)))
        x = torch.stack([data[s:s + seq_len] for s in starts.tolist()])
        y = torch.stack([data[s + 1:s + seq_len + 1] for s in starts.tolist()])
        logits, state = model(x, state)
        state = detach(state)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    print(f"{cell}: loss {losses[-1]:.4f}")

model.eval()
with torch.no_grad():
    idx, state, sample = torch.tensor([[stoi[text[0]]]]), None, text[0]
    for _ in range(10):
        logits, state = model(idx, state)
        probs = F.softmax(logits[:, -1], dim=-1)
        idx = torch.multinomial(probs, num_samples=1)
        sample += itos[idx.item()]
print("sample:", repr(sample))
