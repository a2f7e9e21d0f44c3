"""2-D convolution (cross-correlation, NCHW) as a learner writes it: the forward on sliding
windows, the backward one kernel offset at a time. The correct layer first, then the bugs."""
import numpy as np

from gradcheck_cli import register


def windows(xp, k, stride):
    """(m, C, H', W', k, k): the k×k windows of xp at the given stride."""
    v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    return v[:, :, ::stride, ::stride]


@register("conv_ok")
class Conv:
    """out[n,f,i,j] = Σ_{c,a,b} W[f,c,a,b]·xp[n,c,s·i+a,s·j+b] + b[f], xp = x zero-padded by p.
    x (m, C, H, W), W (F, C, k, k), b (F,), out (m, F, H', W')."""

    def __init__(self, filters: int, kernel: int = 3, stride: int = 1, padding: int = 0):
        self.filters, self.kernel, self.stride, self.padding = filters, kernel, stride, padding

    def build(self, input_shape, rng):
        C, H, W = input_shape
        k, s, p = self.kernel, self.stride, self.padding
        self.params = {"W": rng.standard_normal((self.filters, C, k, k)) / np.sqrt(C * k * k),
                       "b": 0.1 * rng.standard_normal(self.filters)}
        return (self.filters, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)

    def forward(self, x):
        p = self.padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        cols = windows(xp, self.kernel, self.stride)
        out = np.einsum("ncijab,fcab->nfij", cols, self.params["W"])
        return out + self.params["b"][None, :, None, None], (x, xp)

    def grads(self, dout, xp, kernel_of):
        """dW and the padded dx, one kernel offset (a, b) at a time."""
        W, k, s = self.params["W"], self.kernel, self.stride
        Ho, Wo = dout.shape[2:]
        dxp = np.zeros_like(xp)
        dW = np.zeros_like(W)
        for a in range(k):
            for b in range(k):
                rows, cols = slice(a, a + s * Ho, s), slice(b, b + s * Wo, s)
                dW[:, :, a, b] = np.einsum("nfij,ncij->fc", dout, xp[:, :, rows, cols])
                dxp[:, :, rows, cols] += np.einsum("nfij,fc->ncij", dout, kernel_of(W)[:, :, a, b])
        return dW, dxp

    def backward(self, dout, cache):
        x, xp = cache
        p = self.padding
        dW, dxp = self.grads(dout, xp, lambda W: W)
        dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
        return dx, {"W": dW, "b": dout.sum(axis=(0, 2, 3))}


@register("conv_dx_not_cropped")
class ConvDxNotCropped(Conv):
    def backward(self, dout, cache):
        x, xp = cache
        dW, dxp = self.grads(dout, xp, lambda W: W)
        return dxp, {"W": dW, "b": dout.sum(axis=(0, 2, 3))}


@register("conv_dx_crop_shifted")
class ConvDxCropShifted(Conv):
    def backward(self, dout, cache):
        x, xp = cache
        dW, dxp = self.grads(dout, xp, lambda W: W)
        dx = dxp[:, :, :x.shape[2], :x.shape[3]]       # the crop forgot the offset p
        return dx, {"W": dW, "b": dout.sum(axis=(0, 2, 3))}


@register("conv_dW_flipped")
class ConvDWFlipped(Conv):
    def backward(self, dout, cache):
        x, xp = cache
        p = self.padding
        dW, dxp = self.grads(dout, xp, lambda W: W)
        dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
        return dx, {"W": dW[:, :, ::-1, ::-1], "b": dout.sum(axis=(0, 2, 3))}


@register("conv_dx_flipped_kernel")
class ConvDxFlippedKernel(Conv):
    def backward(self, dout, cache):
        x, xp = cache
        p = self.padding
        dW, dxp = self.grads(dout, xp, lambda W: W[:, :, ::-1, ::-1])   # "convolution flips the kernel"
        dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
        return dx, {"W": dW, "b": dout.sum(axis=(0, 2, 3))}


@register("conv_db_not_summed_spatially")
class ConvDbNotSummedSpatially(Conv):
    def backward(self, dout, cache):
        dx, grads = Conv.backward(self, dout, cache)
        return dx, {**grads, "b": dout.sum(axis=0)}


@register("conv_dW_over_m")
class ConvDWOverM(Conv):
    def backward(self, dout, cache):
        dx, grads = Conv.backward(self, dout, cache)
        return dx, {**grads, "W": grads["W"] / dout.shape[0]}


@register("conv_dW_no_stride")
class ConvDWNoStride(Conv):
    def backward(self, dout, cache):
        x, xp = cache
        dx, grads = Conv.backward(self, dout, cache)
        W, k = self.params["W"], self.kernel
        Ho, Wo = dout.shape[2:]
        dW = np.zeros_like(W)
        for a in range(k):
            for b in range(k):
                dW[:, :, a, b] = np.einsum("nfij,ncij->fc", dout, xp[:, :, a:a + Ho, b:b + Wo])
        return dx, {**grads, "W": dW}


@register("conv_dx_overwritten")
class ConvDxOverwritten(Conv):
    def backward(self, dout, cache):
        x, xp = cache
        W, k, s, p = self.params["W"], self.kernel, self.stride, self.padding
        dW, _ = self.grads(dout, xp, lambda W: W)
        Ho, Wo = dout.shape[2:]
        dxp = np.zeros_like(xp)
        for a in range(k):
            for b in range(k):
                rows, cols = slice(a, a + s * Ho, s), slice(b, b + s * Wo, s)
                dxp[:, :, rows, cols] = np.einsum("nfij,fc->ncij", dout, W[:, :, a, b])   # = where += belongs
        dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
        return dx, {"W": dW, "b": dout.sum(axis=(0, 2, 3))}
