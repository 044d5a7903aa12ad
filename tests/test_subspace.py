import pytest
import torch
from torch import nn

from rlsub.core.errors import RlsubError
from rlsub.core.registry import build_network, count_parameters
from rlsub.core.subspace import Subspace

KINDS = ["dense", "sparse", "fastfood"]
MLP_KW = {"in_dim": 4, "out_dim": 2, "hidden": [20, 20], "activation": "relu"}


def _mlp_sub(kind="sparse", d=10, **kw):
    return Subspace.from_spec(
        "mlp", MLP_KW, theta0_seed=1, d=d, projection=kind, projection_seed=2, **kw
    )


@pytest.mark.parametrize("kind", KINDS)
def test_z_zero_reproduces_theta0_exactly(kind):
    net = build_network("mlp", MLP_KW, seed=1)
    x = torch.randn(7, 4)
    expected = net(x)
    sub = Subspace(build_network("mlp", MLP_KW, seed=1), 10, kind, seed=0)
    assert torch.equal(sub(x), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_only_z_is_a_parameter_and_gets_gradients(kind):
    sub = _mlp_sub(kind)
    params = dict(sub.named_parameters())
    assert list(params) == ["z"]
    theta0 = sub.theta0.clone()
    sub(torch.randn(5, 4)).pow(2).sum().backward()
    assert sub.z.grad is not None and sub.z.grad.abs().sum() > 0
    opt = torch.optim.SGD(sub.parameters(), lr=0.1)
    opt.step()
    assert torch.equal(sub.theta0, theta0)
    assert sub.z.abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_params_equal_split_theta_and_give_the_same_gradient(kind):
    sub = _mlp_sub(kind, d=12)
    with torch.no_grad():
        sub.z.normal_()
    x = torch.randn(6, 4)
    views = sub.params()
    split = sub.split(sub.theta())
    assert all(torch.equal(views[n], split[n]) for n in sub.names)  # the same bits
    assert views.keys() == split.keys()
    # dense has no transpose kernel: its params() is split(theta())
    assert sub.P.has_transpose_kernel(sub.theta0, sub.z) == (kind != "dense")
    grads = []
    for params in (views, split):
        sub.z.grad = None
        sub.call(params, x).pow(2).sum().backward()
        grads.append(sub.z.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    # tensors the loss does not use give no gradient, and the others still do
    sub.z.grad = None
    p = sub.params()
    (p["0.weight"].sum() + p["4.bias"].sum()).backward()
    sub.z.grad, expected = None, sub.z.grad.clone()
    theta = sub.theta()
    theta.backward(torch.cat([torch.ones(80), torch.zeros(sub.D - 82), torch.ones(2)]))
    torch.testing.assert_close(expected, sub.z.grad, rtol=1e-5, atol=1e-6)


def test_rest_direct_keeps_other_parameters_trainable():
    sub = _mlp_sub(include=["0"], rest="direct")  # first layer in the subspace
    names = sorted(n for n, _ in sub.named_parameters())
    assert names == ["module.2.bias", "module.2.weight", "module.4.bias", "module.4.weight", "z"]
    assert sub.D == 4 * 20 + 20
    frozen = _mlp_sub(include=["0"], rest="frozen")
    assert [n for n, _ in frozen.named_parameters()] == ["z"]


def test_unknown_include_is_a_clear_error():
    with pytest.raises(RlsubError, match="'actor' matches no parameter"):
        _mlp_sub(include=["0", "actor"])


@pytest.mark.parametrize("kind", KINDS)
def test_population_forward_equals_loop(kind):
    sub = _mlp_sub(kind)
    Z = torch.randn(5, 10)
    x = torch.randn(5, 3, 4)
    out = sub.population_forward(Z, x)
    assert out.shape == (5, 3, 2)
    for i in range(5):
        with sub.z_set_to(Z[i]):
            torch.testing.assert_close(out[i], sub(x[i]), rtol=1e-5, atol=1e-5)


def test_population_forward_generic_path_on_a_cnn():
    sub = Subspace.from_spec("lenet_mnist", {}, 0, 30, "fastfood", 1)
    Z = torch.randn(3, 30) * 0.1
    x = torch.randn(3, 2, 1, 28, 28)
    out = sub.population_forward(Z, x)
    for i in range(3):
        with sub.z_set_to(Z[i]):
            torch.testing.assert_close(out[i], sub(x[i]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_is_exact_and_compact(tmp_path, kind):
    sub = Subspace.from_spec(
        "fc_mnist", {}, theta0_seed=4, d=50, projection=kind, projection_seed=9
    )
    with torch.no_grad():
        sub.z.normal_()
    path = sub.save(tmp_path / "policy.pt", extra={"note": "hi"})
    loaded, extra = Subspace.load(path)
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(loaded(x), sub(x))
    assert extra == {"note": "hi"}
    assert path.stat().st_size < 20_000  # D = 199,210 floats would be 800 kB
    assert path.stat().st_size < 0.05 * 4 * sub.D


def test_direct_mode_is_identity_projection():
    sub = _mlp_sub(d="direct")
    assert sub.d == sub.D == 562 and sub.projection_kind == "identity"
    with torch.no_grad():
        sub.z[0] = 1.0
    assert torch.equal(
        sub.theta(), sub.theta0 + torch.nn.functional.one_hot(torch.tensor(0), 562).float()
    )


def test_load_rejects_foreign_file(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(RlsubError, match="not an rlsub policy file"):
        Subspace.load(bad)
    with pytest.raises(RlsubError, match="no such policy file"):
        Subspace.load(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "name,D",
    [
        ("mlp", 562),
        ("fc_mnist", 199_210),
        ("fc_cifar", 656_810),
        ("lenet_mnist", 44_426),
        ("lenet_cifar", 62_006),
        ("es_pong", 1_005_974),
        ("nature_cnn", 1_687_206),
    ],
)
def test_parameter_counts_match_reference(name, D):
    kw = MLP_KW if name == "mlp" else {}
    assert count_parameters(build_network(name, kw)) == D


def test_network_shapes():
    assert build_network("es_pong").eval()(torch.zeros(2, 4, 84, 84)).shape == (2, 6)
    assert build_network("nature_cnn")(torch.zeros(2, 4, 84, 84)).shape == (2, 6)
    assert build_network("lenet_cifar")(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_network_is_a_clear_error():
    with pytest.raises(RlsubError, match="unknown network 'resnet'; allowed"):
        build_network("resnet")


def test_d_too_large_for_dense_is_a_clear_error():
    with pytest.raises(RlsubError, match="exceeds D=562"):
        _mlp_sub("dense", d=1000)


def test_module_code_untouched_and_works_with_bn():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    sub = Subspace(net, 5, "dense", seed=0)
    out = sub(torch.randn(8, 3))
    assert out.shape == (8, 1)
    assert sub.module[1].running_mean.abs().sum() > 0  # BN buffers still updated in train mode


def test_call_swaps_theta_in_and_puts_theta0_back_even_on_error():
    from torch.func import functional_call

    sub = Subspace(build_network("mlp", {"in_dim": 4, "out_dim": 2}, seed=0), 6, "sparse", seed=0)
    x = torch.randn(5, 4)
    with torch.no_grad():
        sub.z.normal_()
    params = sub.split(sub.theta())
    torch.testing.assert_close(sub.call(params, x), functional_call(sub.module, params, (x,)))
    at_rest = {n: t.data_ptr() for n, t in sub.module.named_buffers()}
    with pytest.raises(RuntimeError):
        sub.call(params, torch.randn(5, 3))  # wrong input width
    assert {n: t.data_ptr() for n, t in sub.module.named_buffers()} == at_rest
    # theta0 is untouched: the module alone still computes the z = 0 network
    with torch.no_grad():
        sub.z.zero_()
    torch.testing.assert_close(sub(x), sub.module(x))


@pytest.mark.parametrize("kind", ["sparse", "fastfood"])
def test_a_second_derivative_through_the_kernels_is_refused(kind):
    sub = _mlp_sub(kind)
    (g,) = torch.autograd.grad(
        sub.call(sub.params(), torch.randn(3, 4)).sum(), sub.z, create_graph=True
    )
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()
