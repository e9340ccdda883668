int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{total}}) return;
int b = i / {{n}}, j = i % {{n}};
float v = p3[j];
for (int q = 0; q < {{k}}; q++) v += p2[j * {{k}} + q] * p1[b * {{k}} + q];
p0[i] = {{act}};
