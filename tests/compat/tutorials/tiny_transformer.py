"""A tiny Transformer encoder classifier: token and learnt position embeddings, a 2-layer
nn.TransformerEncoder with a key padding mask, masked mean pooling and a linear head; AdamW
with a warm-up schedule."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, TensorDataset

# data loading (the harness gives padded token ids, lengths and labels)
PAD = 0
tokens = torch.tensor(DATA["tokens"])
labels = torch.tensor(DATA["labels"])
loader = DataLoader(TensorDataset(tokens, labels), batch_size=8, shuffle=False)


class TinyTransformer(nn.Module):
    def __init__(self, vocab, num_classes, d_model=16, nhead=2, layers=2, max_len=10):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=32, dropout=DROPOUT,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        padding = x == PAD                                   # (B, T) True where padded
        h = self.tok(x) + self.pos[:, :x.size(1)]            # (B, T, d)
        h = self.encoder(h, src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).float()              # (B, T, 1)
        pooled = (self.norm(h) * keep).sum(1) / keep.sum(1)  # (B, d)
        return self.head(pooled)


model = TinyTransformer(vocab=12, num_classes=3)
model.load_state_dict(SHARED(model.state_dict()))
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
scheduler = LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 4))
criterion = nn.CrossEntropyLoss()
losses = []
for epoch in range(3):
    model.train()
    for x, y in loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())

model.eval()
with torch.no_grad():
    logits = model(tokens)
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
losses.append(F.cross_entropy(logits, labels).item())
print(f"final loss {losses[-1]:.4f}, accuracy {accuracy:.2f}")
