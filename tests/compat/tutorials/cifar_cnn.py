"""A CIFAR-style CNN: Conv/MaxPool/Linear net, CrossEntropyLoss, SGD with momentum."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

# data loading (synthetic 3x16x16 images, 4 classes)
trainset = TensorDataset(torch.tensor(DATA["images"]), torch.tensor(DATA["labels"]))
trainloader = DataLoader(trainset, batch_size=8, shuffle=False, num_workers=0)
classes = ("plane", "car", "bird", "cat")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 8, 3)
        self.fc1 = nn.Linear(8 * 2 * 2, 24)
        self.fc2 = nn.Linear(24, 16)
        self.fc3 = nn.Linear(16, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


net = Net()
net.load_state_dict(SHARED(net.state_dict()))
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
losses = []
for epoch in range(2):
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        inputs, labels = data
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        losses.append(loss.item())
    print(f"[{epoch + 1}] loss: {running_loss / len(trainloader):.3f}")

correct, total = 0, 0
with torch.no_grad():
    for images, labels in trainloader:
        _, predicted = torch.max(net(images), 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
print(f"accuracy {100 * correct // total} %; first: {classes[predicted[0]]}")
